"""The served European pricer compiled: table lookup, Hermite interpolation and the chain rule
in one loop per option (numba), about 20x less time per thousand options than the same steps as
numpy array operations, which on two cores are bound by per-operation overhead (a few µs each,
~150 of them), not arithmetic.

The price and Greek formulas are not a second implementation: `coordinates` and `assemble` are
the very functions the numpy path runs (`causalcast.options.jets`), compiled for scalars. Tests
compare the kernel's output with autograd through the torch networks. Rows with a
total volatility outside the grid (none in the trained domain) are priced by the network's
jets.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numba
import numpy as np

from causalcast.options.black_scholes import GREEKS as GREEK_KEYS
from causalcast.options.inputs import OptionInputs
from causalcast.options.jet_algebra import assemble, coordinates

if TYPE_CHECKING:
    from causalcast.options.jets import EuropeanJet

_coordinates = numba.njit(cache=True, nogil=True)(coordinates)
_assemble = numba.njit(cache=True, nogil=True)(assemble)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@numba.njit(cache=True, nogil=True)
def _kernel(spot, strike, tau, sigma, rate, div, put, cells, x0, hx, v0, hv, nx, nv,
            out, outside):
    hs = np.empty(4)
    ds = np.empty(4)
    ht = np.empty(4)
    dt = np.empty(4)
    for k in range(spot.shape[0]):
        m = spot[k] / strike[k]
        v, xs, f, disc, p = _coordinates(m, tau[k], sigma[k], rate[k], div[k])
        # Beyond |x| = X_MAX every term g enters is multiplied by φ(x) < 1e-18, so g at the grid's
        # edge prices those rows identically to float64 precision (no extrapolation, no jets).
        fx = min(max((xs - x0) / hx, 0.0), nx - 1.0)
        fv = (v - v0) / hv
        if not (fv >= 0.0 and fv <= nv - 1):
            outside[k] = True
            continue
        i = min(int(fx), nx - 2)
        j = min(int(fv), nv - 2)
        s = fx - i
        t = fv - j
        s2, t2 = s * s, t * t
        hs[0], hs[1], hs[2], hs[3] = 2 * s2 * s - 3 * s2 + 1, s2 * s - 2 * s2 + s, \
            3 * s2 - 2 * s2 * s, s2 * s - s2
        ds[0], ds[1], ds[2], ds[3] = 6 * s2 - 6 * s, 3 * s2 - 4 * s + 1, 6 * s - 6 * s2, \
            3 * s2 - 2 * s
        ht[0], ht[1], ht[2], ht[3] = 2 * t2 * t - 3 * t2 + 1, t2 * t - 2 * t2 + t, \
            3 * t2 - 2 * t2 * t, t2 * t - t2
        dt[0], dt[1], dt[2], dt[3] = 6 * t2 - 6 * t, 3 * t2 - 4 * t + 1, 6 * t - 6 * t2, \
            3 * t2 - 2 * t
        head = 1 if put[k] > 0.5 else 0
        cell = i * (nv - 1) + j
        g = g_x = g_v = g_xx = 0.0
        for sb in range(4):
            for tb in range(4):
                value = cells[cell, sb * 4 + tb, head]
                slope = cells[cell, sb * 4 + tb, 2 + head]
                g += hs[sb] * ht[tb] * value
                g_v += hs[sb] * dt[tb] * value
                g_x += hs[sb] * ht[tb] * slope
                g_xx += ds[sb] * ht[tb] * slope
        c = 0.5 * math.erfc(-xs * _INV_SQRT2)
        res = _assemble(g, g_x, g_v / hv, g_xx / hx, c, put[k], m, tau[k], rate[k], div[k],
                        strike[k], v, xs, f, disc, p)
        for q in range(6):
            out[q, k] = res[q]


def table_greeks(jet: EuropeanJet, x: OptionInputs, is_call: np.ndarray) -> dict[str, np.ndarray]:
    """Prices and Greeks of the rows (one kind per row) from the jet's table."""
    table = jet.table
    assert table is not None
    n = len(x.spot)
    out = np.empty((6, n))
    outside = np.zeros(n, dtype=np.bool_)
    columns = (np.ascontiguousarray(a, dtype=np.float64)
               for a in (x.spot, x.strike, x.tau, x.sigma, x.rate, x.div))
    _kernel(*columns, (~np.asarray(is_call, dtype=bool)).astype(np.float64), table.cells,
            table.x0, table.hx, table.v0, table.hv, table.nx, table.nv, out, outside)
    result = dict(zip(GREEK_KEYS, out, strict=True))
    if outside.any():
        rest = jet.network_greeks(x.take(outside), np.asarray(is_call)[outside])
        for key in GREEK_KEYS:
            result[key][outside] = rest[key]
    return result

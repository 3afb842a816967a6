"""The European network tabulated: its output and derivatives by bicubic Hermite interpolation.

Why: the network g(x, v) has two inputs, so it can be compiled once into a table of its values
and exact derivatives on a fine grid and then evaluated per option with a few dozen arithmetic
operations, instead of two 64×64 matmuls carrying second-order jets (~2 ms per thousand options
on one core, most of a serving request's budget). Evaluated by the compiled loop in
`causalcast.options.kernel`: 0.13 ms per thousand options with Greeks.

Two fields are tabulated, each with the data bicubic Hermite interpolation needs (value, ∂x,
∂v, ∂x∂v at every node): g itself, which gives g and ∂g/∂v with O(h⁴) and O(h³) errors, and
∂g/∂x, whose interpolant gives ∂g/∂x and, by its x-derivative, ∂²g/∂x² with an O(h³) error —
differentiating the interpolant of g twice would only be O(h²) and dominate gamma's error. The
node values are third-order forward-mode jets of the trained weights evaluated in float64:
exact derivatives of the network, not finite differences, and free of float32 rounding noise
that the 1/h² of a second derivative would amplify. tests/options/test_options_pinn.py bounds the
difference to autograd through the network on the whole domain.

Beyond |x| = X_MAX (reached only at very short maturities far from the money) g enters every
price and Greek multiplied by φ(x) < 1e-17, so the kernel holds x at the grid's edge there: the
result is the network's to float64 precision, with no extrapolation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from causalcast.options.jets import EuropeanJet

X_MAX = 9.0          # φ(9) ≈ 1e-18: beyond it g no longer moves a float64 price
X_STEP = 0.05
V_STEP = 0.02


def _node_jets(jet: EuropeanJet, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """(g, g_x, g_v, g_xx, g_xv, g_xxv) of a tanh network, in float64, each (n, 2)."""
    first, *rest = jet.layers
    scale = jet.feature_scale.astype(np.float64)
    w0 = first.weight_t.astype(np.float64)
    feats = np.stack([x * scale[0], v * scale[1] - 1.0], axis=1)
    z = feats @ w0 + first.bias.astype(np.float64)
    z_x = np.broadcast_to(scale[0] * w0[0], z.shape)
    z_v = np.broadcast_to(scale[1] * w0[1], z.shape)
    zero = np.zeros_like(z)
    z_xx, z_xv, z_xxv = zero, zero, zero
    n = len(x)
    for layer in rest:
        a = np.tanh(z)
        d1 = 1.0 - a * a
        d2 = -2.0 * a * d1
        d3 = -2.0 * d1 * (1.0 - 3.0 * a * a)
        rows = [a, d1 * z_x, d1 * z_v, d2 * z_x * z_x + d1 * z_xx,
                d2 * z_x * z_v + d1 * z_xv,
                d3 * z_x * z_x * z_v + d2 * (z_xx * z_v + 2.0 * z_x * z_xv) + d1 * z_xxv]
        out = np.concatenate(rows) @ layer.weight_t.astype(np.float64)
        z, z_x, z_v, z_xx, z_xv, z_xxv = (out[i * n:(i + 1) * n] for i in range(6))
        z = z + layer.bias.astype(np.float64)
    return z, z_x, z_v, z_xx, z_xv, z_xxv


class CorrectionTable:
    """g and its jets on a regular (x, v) grid, as per-cell Hermite coefficients that the
    compiled pricer (`causalcast.options.kernel`) interpolates."""

    def __init__(self, jet: EuropeanJet, v_max: float, chunk: int = 20_000) -> None:
        if jet.activation != "tanh":
            raise ValueError(f"activation: the table needs tanh, got {jet.activation!r}")
        self.jet = jet
        self.x0, self.hx = -X_MAX, X_STEP
        self.v0, self.hv = 0.0, V_STEP
        self.nx = round(2 * X_MAX / X_STEP) + 1
        self.nv = int(np.ceil(v_max / V_STEP)) + 1
        xg = self.x0 + self.hx * np.arange(self.nx)
        vg = self.v0 + self.hv * np.arange(self.nv)
        xx, vv = (a.ravel() for a in np.meshgrid(xg, vg, indexing="ij"))
        parts = [_node_jets(jet, xx[i:i + chunk], vv[i:i + chunk])
                 for i in range(0, len(xx), chunk)]
        g, g_x, g_v, g_xx, g_xv, g_xxv = (np.concatenate(p) for p in zip(*parts, strict=True))
        hx, hv = self.hx, self.hv
        shape = (self.nx, self.nv, 2)
        # Hermite data per node: value, ∂x·hx, ∂v·hv, ∂x∂v·hx·hv, for g and for ∂g/∂x, with the
        # two heads of each side by side: (nx, nv, 4 quantities, 4 = g heads + ∂g/∂x heads).
        data = np.stack([np.concatenate([a.reshape(shape), b.reshape(shape)], axis=-1)
                         for a, b in ((g, g_x), (g_x * hx, g_xx * hx), (g_v * hv, g_xv * hv),
                                      (g_xv * hx * hv, g_xxv * hx * hv))], axis=2)
        # Per cell, its 16 coefficients in basis order (s basis, t basis): the s basis is
        # (value at i, slope at i, value at i+1, slope at i+1) and so is the t basis; slopes
        # are quantity 1 in x, 2 in v, 3 in both. One gather per option then fetches them all.
        cells = np.empty((self.nx - 1, self.nv - 1, 4, 4, 4))
        for sb in range(4):
            for tb in range(4):
                di, dj = sb // 2, tb // 2
                quantity = (sb % 2) + 2 * (tb % 2)
                cells[:, :, sb, tb] = data[di:self.nx - 1 + di, dj:self.nv - 1 + dj, quantity]
        self.cells = cells.reshape(-1, 16, 4)

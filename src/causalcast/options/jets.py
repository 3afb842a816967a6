"""European PINN prices and Greeks in one forward pass, without autograd.

Why this exists: the service prices batches of about a thousand options with Greeks, and
autograd's double backward (for gamma) through a float32 MLP plus about forty elementwise tensor
ops cost 5.5 ms per thousand options on one core — mostly graph bookkeeping. The jets take
2.5 ms, and the interpolation table built from them (`causalcast.options.table`), evaluated
by a compiled loop (`causalcast.options.kernel`), 0.13 ms.

The European network only sees two coordinates (x, v) (see `causalcast.options.pinn`), so the
derivatives the Greeks need are few: g, ∂g/∂x, ∂g/∂v and ∂²g/∂x². They are propagated through
the MLP as a second-order forward-mode jet (value and three tangents stacked into one matmul
per layer), and the closed-form part of the price is differentiated by hand below.
`pricer.pinn_greeks_autograd` stays as the reference: tests check that they agree to float32
rounding (measured: ~1e-6 relative).

Notation (per unit strike; m = S/K, D = e^{−rτ}, v = σ√τ, L = ln m + (r−q)τ, x = L/v,
f = m e^{(r−q)τ}, c = Φ(x), p = φ(x), G = network output for the row's head):

    u = D h,  h = (f − 1) c + v p + v² p G − [put] (f − 1)
    h_f = c − [put],  h_x = p [(f − 1) − v x + v² (G_x − x G)],  h_v = p [1 + v (2G + v G_v)]
    h_xx = p [−(f − 1) x − v (1 − x²) + v² (G_xx − 2x G_x + (x² − 1) G)],  h_xf = p

(the put's (1 − f)(1 − c) equals the call's (f − 1) c − (f − 1), which is where "− [put]" comes
from). The Greeks follow by the chain rule through x, v, f and D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtr

from causalcast.options.black_scholes import GREEKS as GREEK_KEYS
from causalcast.options.inputs import OptionInputs
from causalcast.options.jet_algebra import assemble, coordinates

if TYPE_CHECKING:
    from causalcast.options.pinn import EuropeanPINN
    from causalcast.options.table import CorrectionTable

TABULATE_AT = 200_000   # rows with Greeks in one call from which building the table pays off


@dataclass(frozen=True)
class _Layer:
    weight_t: np.ndarray   # (in, out), transposed once so rows @ weight_t is the layer
    bias: np.ndarray       # (out,)


def _activation_jets(name: str, z: np.ndarray, order: int = 2) -> tuple[np.ndarray, ...]:
    """(a(z), a'(z), a''(z)) for the activations PinnConfig allows (only a(z) at order 0)."""
    if name == "tanh":
        a = np.tanh(z)
        if order == 0:
            return (a,)
        d1 = 1.0 - a * a
        return a, d1, -2.0 * a * d1
    if name == "silu":
        s = 1.0 / (1.0 + np.exp(-z))
        a = z * s
        if order == 0:
            return (a,)
        d1 = s * (1.0 + z * (1.0 - s))
        return a, d1, s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    raise ValueError(f"activation: no jet for {name!r}")


class EuropeanJet:
    """A frozen copy of a trained `EuropeanPINN` that returns prices and Greeks per row."""

    def __init__(self, model: EuropeanPINN) -> None:
        from causalcast.options.pinn import V_MAX

        linears = [m for m in model.net if hasattr(m, "weight")]
        self.layers = [_Layer(lin.weight.detach().cpu().numpy().T.copy(),
                              lin.bias.detach().cpu().numpy().copy()) for lin in linears]
        self.dtype = self.layers[0].weight_t.dtype
        self.activation = model.cfg.activation
        # d feature / d(x, v): features are (x / 4, 2 v / V_MAX − 1).
        self.feature_scale = np.array([0.25, 2.0 / V_MAX], dtype=self.dtype)
        self.v_max = V_MAX
        self.table: CorrectionTable | None = None

    def tabulate(self) -> CorrectionTable:
        """Compile the network into its interpolation table (`causalcast.options.table`), under a
        second once; from then on prices and Greeks come from the table through the compiled
        kernel (`causalcast.options.kernel`), 0.13 ms per thousand options with Greeks."""
        from causalcast.options.table import CorrectionTable

        if self.table is None:
            self.table = CorrectionTable(self, self.v_max)
        return self.table

    def correction(self, x: np.ndarray, v: np.ndarray,
                   jets: bool = True) -> tuple[np.ndarray, ...]:
        """(G, G_x, G_v, G_xx), each (n, 2) float64: the network output and its jets
        (``jets=False``: only (G,))."""
        n = len(x)
        first, *rest = self.layers
        feats = np.stack([x * self.feature_scale[0], v * self.feature_scale[1] - 1.0], axis=1)
        z = feats.astype(self.dtype) @ first.weight_t + first.bias
        if not jets:
            for layer in rest:
                z = _activation_jets(self.activation, z, order=0)[0] @ layer.weight_t \
                    + layer.bias
            return (np.asarray(z, dtype=np.float64),)
        # The first layer is linear in (x, v): constant tangents, no second derivative.
        z_x = np.broadcast_to(self.feature_scale[0] * first.weight_t[0], z.shape)
        z_v = np.broadcast_to(self.feature_scale[1] * first.weight_t[1], z.shape)
        z_xx = None
        for layer in rest:
            a, d1, d2 = _activation_jets(self.activation, z)
            a_xx = d2 * z_x * z_x if z_xx is None else d2 * z_x * z_x + d1 * z_xx
            stacked = np.concatenate([a, d1 * z_x, d1 * z_v, a_xx]) @ layer.weight_t
            z, z_x, z_v, z_xx = (stacked[i * n:(i + 1) * n] for i in range(4))
            z = z + layer.bias
        return tuple(np.asarray(t, dtype=np.float64) for t in (z, z_x, z_v, z_xx))

    def greeks(self, x: OptionInputs, is_call: np.ndarray | None,
               greeks: bool = True) -> dict[str, np.ndarray]:
        """Price and Greeks in the units of `pricer.price_options` (vega per unit σ, theta per
        year, rho per unit r); ``greeks=False``: the price only. ``is_call=None`` gives both
        kinds: arrays of shape (2, n)."""
        if greeks and self.table is None and len(x.spot) >= TABULATE_AT:
            self.tabulate()   # the one-off build costs less than this batch's jets
        if self.table is not None:   # the compiled table: Greeks come at no extra cost
            from causalcast.options.kernel import table_greeks

            kinds = [np.ones(x.shape, bool), np.zeros(x.shape, bool)] if is_call is None \
                else [is_call]
            parts = [table_greeks(self, x, calls) for calls in kinds]
            return {k: np.stack([p[k] for p in parts]) if is_call is None else parts[0][k]
                    for k in (GREEK_KEYS if greeks else ("price",))}
        return self.network_greeks(x, is_call, greeks)

    def network_greeks(self, x: OptionInputs, is_call: np.ndarray | None,
                       greeks: bool = True) -> dict[str, np.ndarray]:
        """`greeks` from the network's own jets (never the table)."""
        m, tau, sigma, rate, div = (np.asarray(a, dtype=np.float64) for a in
                                    (x.moneyness, x.tau, x.sigma, x.rate, x.div))
        strike = np.asarray(x.strike, dtype=np.float64)
        v, xs, f, disc, p = coordinates(m, tau, sigma, rate, div)
        c = ndtr(xs)
        jets = self.correction(xs, v, jets=greeks)
        keys = GREEK_KEYS if greeks else ("price",)
        out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for col, call in ([(0, True), (1, False)] if is_call is None else [(None, is_call)]):
            if col is None:   # one head per row
                pick = np.where(call[:, None], 0, 1)
                head = [np.take_along_axis(a, pick, 1)[:, 0] for a in jets]
                put = (~call).astype(np.float64)
            else:
                head = [a[:, col] for a in jets]
                put = 0.0 if call else 1.0
            if greeks:
                values = assemble(*head, c, put, m, tau, rate, div, strike, v, xs, f, disc, p)
            else:
                values = (strike * disc * ((f - 1.0) * (c - put) + v * p
                                           + v * v * p * head[0]),)
            for key, val in zip(keys, values, strict=True):
                out[key].append(val)
        return {k: np.stack(vals) if is_call is None else vals[0] for k, vals in out.items()}

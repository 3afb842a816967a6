"""Forward and dividend yield per expiry from put–call parity on near-the-money pairs.

Estimator (standard practice, stated so the numbers can be reproduced): for European-style
parity C − P = D (F − K) with D = e^{−rτ} from the user's flat rate, every strike that has a
usable call and put gives one forward estimate F_K = K + (C_mid − P_mid)/D. We take the
``pairs`` strikes nearest the spot (where both quotes are liquid and the early-exercise
premium of American options is smallest, so parity is closest to holding) and average their
F_K weighted by 1/(spread_call + spread_put)²: a pair quoted twice as tight counts four times
as much. The dividend yield is the continuous q with F = S e^{(r−q)τ}: q = r − ln(F/S)/τ.
Expiries without a usable pair fall back to q = 0 and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_RATE = 0.04   # flat continuously compounded rate when the user gives none
DEFAULT_PAIRS = 6


@dataclass(frozen=True)
class ExpiryForward:
    expiry: pd.Timestamp
    tau: float
    forward: float
    div: float
    pairs_used: int
    note: str

    def as_dict(self) -> dict:
        return {"expiry": str(self.expiry), "tau": self.tau, "forward": self.forward,
                "div_yield": self.div, "pairs_used": self.pairs_used, "note": self.note}


def implied_forwards(usable: pd.DataFrame, rate: float = DEFAULT_RATE,
                     pairs: int = DEFAULT_PAIRS) -> dict[pd.Timestamp, ExpiryForward]:
    """Per expiry of a validated chain's usable rows (columns expiry, tau, strike, type, bid,
    ask, mid, spot): the parity forward and dividend yield."""
    spot = float(usable["spot"].iloc[0])
    out = {}
    for expiry, group in usable.groupby("expiry"):
        tau = float(group["tau"].iloc[0])
        disc = np.exp(-rate * tau)
        calls = group[group["type"] == "call"].set_index("strike")
        puts = group[group["type"] == "put"].set_index("strike")
        common = calls.index.intersection(puts.index)
        if len(common) == 0:
            fwd = spot * np.exp(rate * tau)
            out[expiry] = ExpiryForward(expiry, tau, float(fwd), 0.0, 0,
                                        "no call/put pair: dividend yield assumed 0")
            continue
        near = np.asarray(sorted(common, key=lambda k: abs(k - spot))[:pairs], dtype=float)
        c, p = calls.loc[near], puts.loc[near]
        f_k = near + (c["mid"].to_numpy() - p["mid"].to_numpy()) / disc
        spread = (c["ask"] - c["bid"]).to_numpy() + (p["ask"] - p["bid"]).to_numpy()
        w = 1.0 / np.maximum(spread, 1e-8) ** 2
        fwd = float(np.sum(w * f_k) / np.sum(w))
        div = float(rate - np.log(fwd / spot) / tau)
        out[expiry] = ExpiryForward(expiry, tau, fwd, div, len(near),
                                    f"weighted mean of {len(near)} near-the-money pair(s)")
    return out

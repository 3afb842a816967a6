"""PNG plots for the CLI: smiles per expiry, and a strategy's P&L curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_smiles(surface: Any, path: Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in surface.slices:
        k = np.linspace(-0.6, 0.6, 200)
        ax.plot(k, np.sqrt(s.fit.params.w(k) / s.tau) * 100, label=str(s.expiry.date()))
    ax.set_xlabel("log-moneyness ln(K/F)")
    ax.set_ylabel("implied vol (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pnl(result: dict[str, Any], path: Path) -> None:
    plt = _figure()
    curves = result["pnl_curves"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in curves.items():
        if name != "spot":
            ax.plot(curves["spot"], values, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("underlying price")
    ax.set_ylabel("P&L")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

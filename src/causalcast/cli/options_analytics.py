"""Options analytics commands: ``options iv`` (one quote, arrays or a chain), ``options
surface`` (SVI fit report, optional smile plot) and ``options strategy`` (multi-leg P&L and
probabilities under flat lognormal, market and model laws)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from causalcast.cli.common import JSON_OPTION, clear_errors, console, fail, print_json, table
from causalcast.cli.sources import chain_option

ARRAY_COLUMNS = ("price", "spot", "strike", "tau")


def register(options_app: typer.Typer) -> None:
    options_app.command("iv")(implied_vol)
    options_app.command("surface")(surface)
    options_app.command("strategy")(strategy)


def _solve(frame, style: str, polish: bool = False):
    """(iv, reason, method, fd_residual or None) per quote."""
    from causalcast.options.analytics.american_iv import american_iv
    from causalcast.options.analytics.iv import european_iv

    args = (frame["price"], frame["spot"], frame["strike"], frame["tau"], frame["rate"],
            frame["div"], frame["type"].to_numpy())
    if style == "american":
        res = american_iv(*args, polish=polish)
        residual = res.fd_residual if polish else None
        if polish and residual is None:
            residual = [float("nan")] * len(res.iv)
        return res.iv, res.reason, res.method, residual
    res = european_iv(*args)
    return res.iv, res.reason, ["closed-form inversion"] * len(res.iv), None


def implied_vol(
    option_price: float = typer.Option(None, "--price", help="One observed option price."),
    spot: float = typer.Option(None, "--spot"),
    strike: float = typer.Option(None, "--strike"),
    tau: float = typer.Option(None, "--tau", help="Years to expiry."),
    rate: float = typer.Option(0.0, "--rate"),
    div: float = typer.Option(0.0, "--div"),
    kind: str = typer.Option("call", "--kind", "--type", help="call or put (--type: the old "
                             "spelling)."),
    style: str = typer.Option("european", "--style", help="european or american."),
    polish: bool = typer.Option(False, "--polish", metavar="",
                                help="American: one Newton step on the "
                                "finite-difference price after the network; reports its "
                                "residual per quote (slower)."),
    quotes: Path = typer.Option(None, "--quotes", help="CSV of arrays: price,spot,strike,tau"
                                "[,rate,div,type]."),
    chain: str = chain_option("Prices to invert: the mids of its usable quotes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Implied volatility of one quote, a CSV of arrays, or a whole chain; every refused quote
    says why."""
    import numpy as np
    import pandas as pd

    if style not in ("european", "american"):
        fail(f"--style: expected european or american, got {style!r}")
    if polish and style != "american":
        fail("--polish: applies to --style american only")
    with clear_errors():
        if chain is not None:
            from causalcast.options.analytics.chain import validate_chain
            from causalcast.options.analytics.chain_source import load_chain
            from causalcast.options.analytics.parity import implied_forwards

            checked = validate_chain(load_chain(chain))
            usable = checked.usable.copy()
            fwd = implied_forwards(usable, rate if rate else 0.04)
            usable["price"] = usable["mid"]
            usable["rate"] = rate if rate else 0.04
            usable["div"] = [fwd[e].div for e in usable["expiry"]]
            frame = usable
        elif quotes is not None:
            frame = pd.read_csv(quotes)
            missing = [c for c in ARRAY_COLUMNS if c not in frame.columns]
            if missing:
                fail(f"{quotes}: missing column(s) {missing}")
            for col, default in (("rate", rate), ("div", div), ("type", kind)):
                if col not in frame.columns:
                    frame[col] = default
        else:
            if None in (option_price, spot, strike, tau):
                fail("give --price --spot --strike --tau, or --quotes CSV, or --chain file")
            frame = pd.DataFrame({"price": [option_price], "spot": [spot], "strike": [strike],
                                  "tau": [tau], "rate": [rate], "div": [div], "type": [kind]})
        iv, reason, method, residual = _solve(frame, style, polish)
    single = chain is None and quotes is None
    if single and reason[0]:
        fail(f"price: {reason[0]}")
    rows = [{"strike": float(k), "tau": float(t), "type": str(ty),
             "implied_volatility": None if not np.isfinite(v) else float(v),
             "reason": r or None, "method": m or None}
            for k, t, ty, v, r, m in zip(frame["strike"], frame["tau"], frame["type"], iv,
                                         reason, method, strict=True)]
    if residual is not None:
        for row, res_i in zip(rows, residual, strict=True):
            row["fd_residual"] = None if not np.isfinite(res_i) else float(res_i)
    if as_json:
        print_json(rows[0] if single else {"style": style, "quotes": rows})
        return
    if single:
        console.print(f"implied volatility: {iv[0]:.8f}")
        return
    console.print(table(f"implied volatility ({style})", ["strike", "tau", "type", "iv",
                                                          "method / reason"],
                        [(f"{r['strike']:g}", f"{r['tau']:.4f}", r["type"],
                          "-" if r["implied_volatility"] is None
                          else f"{r['implied_volatility']:.6f}", r["reason"] or r["method"])
                         for r in rows]))


def _fit(chain: str, rate: float, style: str):
    from causalcast.options.analytics.chain import validate_chain
    from causalcast.options.analytics.chain_source import load_chain
    from causalcast.options.analytics.surface import fit_surface

    return fit_surface(validate_chain(load_chain(chain)), rate, style)


def surface(
    chain: str = chain_option("The chain to fit the surface to.", required=True),
    rate: float = typer.Option(0.04, "--rate", help="Flat continuous rate."),
    style: str = typer.Option("european", "--style", help="european or american inversion."),
    plot: Path = typer.Option(None, "--plot", help="Write the smiles to this PNG."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit an SVI smile per expiry and report RMSE, quotes used/excluded and arbitrage."""
    with clear_errors():
        surf = _fit(chain, rate, style)
        report = surf.report()
        if plot is not None:
            from causalcast.options.analytics.plots import plot_smiles

            plot_smiles(surf, plot)
            report["plot"] = str(plot)
    if as_json:
        from causalcast.options.analytics.units import json_safe

        print_json(json_safe(report))
        return
    console.print(table("SVI surface", ["expiry", "tau", "forward", "quotes", "rmse (vol pts)",
                                        "butterfly-free"],
                        [(e["expiry"][:10], f"{e['tau']:.4f}", f"{e['forward']:.4f}",
                          e["quotes_used"], f"{e['rmse_vol_points']:.3f}", e["butterfly_free"])
                         for e in report["expiries"]]))
    console.print(f"excluded quotes: {len(report['excluded'])}; calendar arbitrage: "
                  f"{len(report['calendar_arbitrage'])} pair(s)")


def strategy(
    leg: list[str] = typer.Option(None, "--leg", help="'+1 call 100 0.5', '-1 put 95 30d "
                                  "@1.2', '+100 stock' (repeat)."),
    preset: str = typer.Option(None, "--preset", help="bull-call, bear-put, straddle, "
                               "strangle, butterfly, iron-condor, covered-call, collar, ..."),
    strikes: str = typer.Option(None, "--strikes", help="Preset strikes, comma-separated."),
    expiry: str = typer.Option(None, "--expiry", help="Preset expiry: years or '30d'."),
    far_expiry: str = typer.Option(None, "--far-expiry", help="Calendar's far expiry."),
    spot: float = typer.Option(None, "--spot", help="Underlying price (default: the chain's)."),
    rate: float = typer.Option(0.04, "--rate"),
    div: float = typer.Option(0.0, "--div"),
    sigma: float = typer.Option(None, "--sigma", help="Flat lognormal σ (distribution a)."),
    chain: str = chain_option("Fits the surface (distribution b; legs priced from it)."),
    forecast: str = typer.Option(None, "--forecast", help="Model law (c) as JSON: "
                                 '{"mu":..,"sigma":..,"nu":..,"horizon":..,"evidence":{..}}.'),
    target: float = typer.Option(None, "--target", help="Profit target for P(P&L ≥ target)."),
    dates: str = typer.Option("", "--dates", help="Earlier dates (years) for P&L curves."),
    greeks_units: str = typer.Option("trader", "--greeks-units", help="trader or raw."),
    plot: Path = typer.Option(None, "--plot", help="Write the P&L curves to this PNG."),
    as_json: bool = JSON_OPTION,
) -> None:
    """P&L, breakevens, extremes, Greeks and probability of profit under each law."""
    from causalcast.options.analytics.legs import parse_expiry, parse_leg, preset_legs
    from causalcast.options.analytics.strategy import Market, evaluate, standard_laws

    if greeks_units not in ("trader", "raw"):
        fail(f"--greeks-units: expected trader or raw, got {greeks_units!r}")
    with clear_errors():
        legs = [parse_leg(t) for t in (leg or [])]
        if preset:
            if not strikes or not expiry:
                fail("--preset needs --strikes and --expiry")
            legs += preset_legs(preset, [float(s) for s in strikes.split(",")],
                                parse_expiry(expiry),
                                parse_expiry(far_expiry) if far_expiry else None)
        if not legs:
            fail("give --leg (repeatable) or --preset")
        surf = _fit(chain, rate, "european") if chain is not None else None
        s0 = spot if spot is not None else (surf.spot if surf is not None else None)
        if s0 is None:
            fail("--spot: needed without --chain")
        model = json.loads(forecast) if forecast else None
        if model is not None:
            bad = [k for k in ("mu", "sigma", "nu", "horizon") if not isinstance(
                model.get(k), int | float) or isinstance(model.get(k), bool)]
            if bad:
                fail(f"--forecast: {bad} must be numbers")
        mk = Market(s0, rate, div, sigma, surf)
        times = tuple(float(t) for t in dates.split(",") if t.strip())
        result = evaluate(legs, mk, standard_laws(mk, sigma, model), target, times,
                          greeks_units)
        if plot is not None:
            from causalcast.options.analytics.plots import plot_pnl

            plot_pnl(result, plot)
            result["plot"] = str(plot)
    if as_json:
        print_json(result)
        return
    console.print(f"net premium {result['net_premium']:.4f} (positive = debit); breakevens "
                  f"{[round(b, 4) for b in result['breakevens']]}; max profit "
                  f"{result['max_profit']}, max loss {result['max_loss']}")
    console.print(table("by distribution", ["law", "P(profit)", "E[P&L]", "P(≥ target)"],
                        [(k, f"{v['pop']:.4f}", f"{v['expected_pnl']:.4f}",
                          "-" if v.get("prob_target") is None else f"{v['prob_target']:.4f}")
                         for k, v in result["distributions"].items()]))
    console.print(f"greeks ({greeks_units}): " + ", ".join(f"{k} {v:.4g}" for k, v in
                                                         result["greeks"].items()))

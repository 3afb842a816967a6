"""Store commands (``causalcast data import|fetch|update|list|show|compact``): real bars into
the versioned store (causalcast.store) and back out."""

from __future__ import annotations

from pathlib import Path

import typer

from causalcast.cli.common import JSON_OPTION, clear_errors, console, fail, print_json, table
from causalcast.cli.sources import store_option

STORE_OPTION = store_option("The versioned market data store (default .causalcast/data).")
REVISE_OPTION = typer.Option(False, "--revise", metavar="",
                             help="Store bars that change stored values "
                             "as a new version (refused by default; old versions stay "
                             "readable).")
VERSION_OPTION = typer.Option(None, "--as-of-version", min=0,
                              help="Read the store as it was at this table version.")


def _report(result, what: str, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    if not result.changed:
        console.print(f"[green]ok[/]: {what}: nothing new (store version {result.version})")
        return
    rows = [(s, n) for s, n in result.added.items()]
    console.print(table(f"{what}: store version {result.version}", ["symbol", "bars added"],
                        rows))
    for rev in result.revisions[:20]:
        console.print(f"[yellow]revised[/]: {rev}")


def import_files(
    paths: list[Path] = typer.Argument(..., help="CSV/Parquet files or folders (symbol = file "
                                       "stem); Yahoo-style or lower-case columns."),
    store: str = STORE_OPTION,
    interval: str = typer.Option("1d", "--interval", help="Bar interval of these files."),
    revise: bool = REVISE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import bar files into the store: all files in one commit, or nothing."""
    from causalcast.store import BarStore
    from causalcast.store.ingest import read_batches

    with clear_errors():
        batches = read_batches(paths)
        result = BarStore(store).write(batches, interval, revise=revise, source="import")
    _report(result, f"imported {len(batches)} symbols", as_json)


def fetch(
    symbols: list[str] = typer.Argument(..., help="Ticker symbols, e.g. MSFT AAPL."),
    source: str = typer.Option("yahoo", "--source", help="Data vendor: yahoo."),
    start: str = typer.Option(None, "--start", help="First date (YYYY-MM-DD)."),
    end: str = typer.Option(None, "--end", help="End date (exclusive, YYYY-MM-DD)."),
    interval: str = typer.Option("1d", "--interval", help="1d or 1h (yahoo: also 30m, 1wk...)."),
    store: str = STORE_OPTION,
    revise: bool = REVISE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fetch bars from a vendor into the store (all symbols in one commit, or nothing)."""
    from causalcast.store import BarStore
    from causalcast.store.sources import SourceError, get_source

    with clear_errors():
        vendor = get_source(source)
        bars_store = BarStore(store)
        try:
            batches = vendor.fetch([s.upper() for s in symbols], start=start, end=end,
                                   interval=interval)
        except SourceError as exc:
            fail(str(exc))
        result = bars_store.write(batches, interval, revise=revise, source=vendor.name)
    _report(result, f"fetched {len(batches)} symbols from {vendor.name}", as_json)


def update(
    store: str = STORE_OPTION,
    revise: bool = REVISE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fetch what is new for every stored series that came from a vendor.

    The last stored bar is fetched again: if the vendor now reports it differently (a late
    correction, or a dividend that rescaled the adjusted closes) that is a revision, refused
    unless --revise, which refetches the series' whole history as a new version."""
    from causalcast.store import BarStore
    from causalcast.store.sources import SOURCES, SourceError, get_source

    with clear_errors():
        bars_store = BarStore(store)
        catalog = bars_store.catalog()
        if not catalog:
            fail(f"store {bars_store.location.root}: empty; use data import or data fetch")
        plan: dict[tuple[str, str], list[dict]] = {}
        skipped = []
        for row in catalog:
            if row["source"] in SOURCES:
                plan.setdefault((row["source"], row["interval"]), []).append(row)
            else:
                skipped.append(row["symbol"])
        results = []
        for (name, interval), rows in plan.items():
            vendor = get_source(name)
            batches = {}
            for row in rows:
                start = row["first"] if revise else row["last"]
                try:
                    batches.update(vendor.fetch([row["symbol"]], start=start[:10], end=None,
                                                interval=interval))
                except SourceError as exc:
                    fail(str(exc))
            result = bars_store.write(batches, interval, revise=revise, source=name)
            results.append((name, interval, result))
    if as_json:
        print_json({"updated": [{"source": n, "interval": i, **r.to_dict()}
                                for n, i, r in results], "skipped_imported": skipped})
        return
    for name, interval, result in results:
        _report(result, f"update {name} {interval}", False)
    if skipped:
        console.print(f"skipped (imported from files, no vendor to ask): {', '.join(skipped)}")


def list_series(
    store: str = STORE_OPTION,
    version: int = VERSION_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Stored series: symbol, interval, first/last bar, bars, version."""
    from causalcast.store import BarStore

    with clear_errors():
        bars_store = BarStore(store)
        rows = bars_store.catalog(version)
    if as_json:
        print_json(rows)
        return
    console.print(table(f"Store {bars_store.location.root}",
                        ["symbol", "interval", "first", "last", "bars", "adjusted bars",
                         "source", "version"],
                        [(r["symbol"], r["interval"], r["first"], r["last"], r["bars"],
                          r["adjusted_bars"], r["source"], r["version"]) for r in rows]))


def show(
    symbol: str = typer.Argument(..., help="Stored symbol."),
    interval: str = typer.Option("1d", "--interval"),
    store: str = STORE_OPTION,
    version: int = VERSION_OPTION,
    tail: int = typer.Option(10, "--tail", min=1, help="How many of the latest bars."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The latest stored bars of one series (raw and adjusted close side by side)."""
    from causalcast.store import BarStore

    with clear_errors():
        bars = BarStore(store).read(symbol, interval, version=version)
    last = bars.tail(tail)
    dates = [ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M")
             for ts in last.index]
    if as_json:
        print_json({"symbol": symbol.upper(), "interval": interval, "bars": len(bars),
                    "rows": [{"date": d, **{k: (None if v != v else v) for k, v in row.items()}}
                             for d, (_, row) in zip(dates, last.iterrows(), strict=True)]})
        return
    console.print(table(f"{symbol.upper()} {interval}: {len(bars)} bars (UTC)",
                        ["date", *bars.columns],
                        [(d, *(f"{v:.6g}" for v in row))
                         for d, (_, row) in zip(dates, last.iterrows(), strict=True)]))


def compact(store: str = STORE_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Merge the small files appends leave into few (a new version; old ones stay readable)."""
    from causalcast.store import BarStore

    with clear_errors():
        bars = BarStore(store)
        version = bars.compact()
    if as_json:
        print_json({"store": bars.location.root, "version": version})
        return
    console.print(f"[green]ok[/]: compacted, store version {version}")


def register(data_app: typer.Typer) -> None:
    data_app.command("import")(import_files)
    data_app.command("fetch")(fetch)
    data_app.command("update")(update)
    data_app.command("list")(list_series)
    data_app.command("show")(show)
    data_app.command("compact")(compact)

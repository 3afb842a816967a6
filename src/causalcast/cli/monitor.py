"""`causalcast monitor score|status|prune`, `causalcast retrain`, `causalcast watch`: live
truth for served models (docs/monitoring.md). The work is in causalcast.monitoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from causalcast.cli.common import (
    JSON_OPTION,
    clear_errors,
    console,
    fail,
    json_option,
    print_json,
    print_json_line,
    table,
)
from causalcast.cli.registry import HOME_OPTION, _open
from causalcast.cli.sources import data_option

monitor_app = typer.Typer(help="Score logged forecasts, show live status and drift.",
                          no_args_is_help=True)
DATA_OPTION = data_option("Bars to score against (default: each version's own data "
                          "source, from its lineage).")
WEBHOOK_OPTION = typer.Option(None, "--alert-webhook", help="POST a JSON event here on "
                              "degrade, promotion, refusal, rollback and failure.")
COMMAND_OPTION = typer.Option(None, "--alert-command", help="Shell command receiving the "
                              "same JSON event on stdin.")


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
    app.command("retrain")(retrain)
    app.command("watch")(watch)


@monitor_app.command("score")
def score(home: Path = HOME_OPTION, data: str | None = DATA_OPTION,
          as_json: bool = JSON_OPTION) -> None:
    """Record the realised outcome of every logged forecast whose bars have arrived."""
    from causalcast.monitoring.scoring import score_pending
    from causalcast.monitoring.service_loop import frame_loader

    with _open(home) as registry:
        result = score_pending(registry, frame_loader(data))
    if as_json:
        print_json(result)
        return
    console.print(f"scored {result['scored']} of {result['pending']} unscored forecasts "
                  "(the rest have not matured yet)")


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


@monitor_app.command("status")
def status(home: Path = HOME_OPTION, data: str | None = DATA_OPTION,
           as_json: bool = JSON_OPTION) -> None:
    """Each production version: ok / watch / degraded with reasons, live metrics with
    Wilson intervals beside the walk-forward figures."""
    from causalcast.monitoring.service_loop import frame_loader
    from causalcast.monitoring.status import monitor_reports

    with _open(home) as registry:
        reports = monitor_reports(registry, frame_loader(data))
    if as_json:
        print_json(reports)
        return
    rows = []
    for r in reports:
        wf = r["walk_forward"] or {}
        h = r["drift"].get("horizon")
        live = r["live"].get(str(h), {}) if h is not None else {}
        d = live.get("direction") or {}
        rows.append((r["version"], r["status"], r["scored"],
                     f"{_fmt(d.get('accuracy'))} [{_fmt(d.get('ci_low'))},"
                     f"{_fmt(d.get('ci_high'))}]" if d else "-",
                     f"{_fmt(wf.get('accuracy'))} [{_fmt(wf.get('ci_low'))},"
                     f"{_fmt(wf.get('ci_high'))}]" if wf else "-",
                     _fmt(live.get("crps"), 5), "; ".join(r["reasons"]) or "-"))
    console.print(table("Live vs walk-forward (first horizon)",
                        ["version", "status", "scored", "live accuracy [95% CI]",
                         "walk-forward [95% CI]", "live CRPS", "reasons"], rows))


@monitor_app.command("prune")
def prune(home: Path = HOME_OPTION,
          keep_days: float = typer.Option(..., "--keep-days", min=0.0,
                                          help="Delete forecasts requested longer ago."),
          as_json: bool = JSON_OPTION) -> None:
    """Retention: delete logged forecasts (and their outcomes) older than --keep-days."""
    cutoff = (datetime.now(UTC) - timedelta(days=keep_days)).isoformat(timespec="microseconds")
    with _open(home) as registry:
        n = registry.meta.prune_predictions(cutoff)
    if as_json:
        print_json({"deleted": n, "cutoff": cutoff})
        return
    console.print(f"deleted {n} logged answers (all their horizons) requested before "
                  f"{cutoff}")


def _alert(webhook: str | None, command: str | None):
    from causalcast.monitoring.alerts import AlertHook, no_alert

    if not webhook and not command:
        return no_alert
    with clear_errors():
        return AlertHook(webhook, command)


def retrain(
    home: Path = HOME_OPTION,
    once: bool = typer.Option(False, "--once", metavar="",
                              help="One pass now, then exit (for cron)."),
    schedule: str | None = typer.Option(None, "--schedule", help="Cron expression "
                                        "(5 fields, UTC): run a pass on each firing."),
    when: str = typer.Option("always", "--when", help="always: retrain every production "
                             "version; drift: only those whose status is degraded."),
    rollback_after: int = typer.Option(100, "--rollback-after", min=1, help="Scored "
                                       "forecasts after which a retrained version worse live "
                                       "than its predecessor is rolled back."),
    folds: int | None = typer.Option(None, "--folds", min=1, help="Walk-forward folds "
                                     "(default: the original run's)."),
    workers: int | None = typer.Option(None, "--workers", min=1),
    data: str | None = DATA_OPTION,
    webhook: str | None = WEBHOOK_OPTION,
    command: str | None = COMMAND_OPTION,
    as_json: bool = json_option("--once: the pass's result as JSON; --schedule: JSON Lines "
                                "on stdout (the startup object, then one line per pass)."),
) -> None:
    """Retrain production models on the data as it is now, through the executor,
    walk-forward evaluation and the promotion gates."""
    if once == (schedule is not None):
        fail("retrain: give exactly one of --once or --schedule")
    if when not in ("always", "drift"):
        fail(f"--when: expected always or drift, got {when!r}")
    alert = _alert(webhook, command)
    with _open(home):   # a missing or damaged registry fails here, in one line
        pass

    def one_pass() -> dict:
        from causalcast.monitoring.retrain import retrain as run_retrain

        return run_retrain(home, when=when, workers=workers, n_folds=folds,
                           rollback_after=rollback_after, data_source=data, alert=alert)

    if schedule is not None:
        _schedule(schedule, one_pass, as_json, {"command": "retrain", "home": str(home),
                                                "when": when})
        return
    result = one_pass()
    if as_json:
        print_json(result)
        return
    console.print(table("Retrain", ["name", "previous", "candidate", "promoted", "why"],
                        [(r["name"], r["previous"], r.get("candidate", "-"),
                          "yes" if r.get("promoted") else "no", r["reason"])
                         for r in result["retrained"]]))
    if any(r["reason"].startswith("failed") for r in result["retrained"]):
        raise typer.Exit(1)


def _schedule(expression: str, job, as_json: bool, startup: dict) -> None:
    """Run ``job`` on a cron schedule in this process until interrupted (APScheduler). With
    ``--json`` stdout is JSON Lines: the startup object, then each pass's result, one line
    each (a supervisor reads them as they come)."""
    try:
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.cron import CronTrigger
    except ImportError:
        fail("--schedule needs APScheduler: pip install 'causalcast[watch]'")
    try:
        trigger = CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        fail(f"--schedule {expression!r}: not a cron expression ({exc})")
    scheduler = BlockingScheduler(timezone="UTC")
    if as_json:
        scheduler.add_job(lambda: print_json_line(job()), trigger, max_instances=1,
                          coalesce=True)
        print_json_line({**startup, "schedule": expression})
    else:
        scheduler.add_job(job, trigger, max_instances=1, coalesce=True)
        console.print(f"retraining on schedule {expression!r} (UTC); Ctrl-C to stop")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


def watch(
    home: Path = HOME_OPTION,
    score_every: float = typer.Option(300.0, "--score-every", min=1.0, help="Seconds "
                                      "between scoring and status passes."),
    schedule: str = typer.Option("0 6 * * 1-5", "--schedule", help="Retrain cron "
                                 "expression (UTC)."),
    when: str = typer.Option("drift", "--when", help="always or drift."),
    rollback_after: int = typer.Option(100, "--rollback-after", min=1),
    data: str | None = DATA_OPTION,
    webhook: str | None = WEBHOOK_OPTION,
    command: str | None = COMMAND_OPTION,
    as_json: bool = json_option("Print the startup object as one JSON line on stdout (the "
                                "passes report through the alert hooks and `monitor status "
                                "--json`)."),
) -> None:
    """Long-running: score and judge every --score-every seconds (alerting when a version
    becomes degraded), and retrain on --schedule."""
    try:
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.cron import CronTrigger
    except ImportError:
        fail("watch needs APScheduler: pip install 'causalcast[watch]'")
    if when not in ("always", "drift"):
        fail(f"--when: expected always or drift, got {when!r}")
    try:
        trigger = CronTrigger.from_crontab(schedule, timezone="UTC")
    except ValueError as exc:
        fail(f"--schedule {schedule!r}: not a cron expression ({exc})")
    alert = _alert(webhook, command)
    with _open(home):
        pass
    from causalcast.monitoring.retrain import retrain as run_retrain
    from causalcast.monitoring.service_loop import monitor_pass

    seen: dict[str, str] = {}

    def score_and_alert() -> None:
        for r in monitor_pass(home, data):
            if r["status"] == "degraded" and seen.get(r["version"]) != "degraded":
                alert("degraded", name=r["name"], version=r["version"], reasons=r["reasons"])
            seen[r["version"]] = r["status"]

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(score_and_alert, "interval", seconds=score_every, max_instances=1,
                      coalesce=True, next_run_time=datetime.now(UTC))
    scheduler.add_job(lambda: run_retrain(home, when=when, rollback_after=rollback_after,
                                          data_source=data, alert=alert),
                      trigger, max_instances=1, coalesce=True)
    if as_json:
        print_json_line({"command": "watch", "home": str(home), "score_every": score_every,
                         "schedule": schedule, "when": when, "rollback_after": rollback_after})
    else:
        console.print(f"watching {home}: scoring every {score_every:g} s, retraining on "
                      f"{schedule!r} (UTC, --when {when}); Ctrl-C to stop")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)

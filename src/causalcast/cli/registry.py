"""`causalcast registry list|show|verify|promote|rollback|gc|backup|restore|recover`: inspect,
curate, back up and repair model versions.

Exit codes: 0 ok; 1 verify found problems (a damaged database included), a gate refused a
promotion, or gc stopped at a large deletion's dry run (rerun with --yes); 2 cannot work on
this (unknown version, stage, run; no registry under --home, which no command here creates;
an empty or damaged database; gc refusing a database that disagrees with its objects; a lock
held past the timeout). See docs/guarantees.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from causalcast.cli.common import (
    JSON_OPTION,
    clear_errors,
    console,
    err_console,
    fail,
    local_home,
    print_json,
    registry_home,
    table,
)
from causalcast.registry import (
    DEFAULT_GRACE_S,
    STAGES,
    DamagedError,
    GateRefused,
    ModelVersion,
    Registry,
    RegistryError,
    VerifyReport,
    default_user,
    maintenance,
)

registry_app = typer.Typer(help="Model versions, stages and artifacts.", no_args_is_help=True)

#: More objects than this in one gc are shown as a dry run first (rerun with --yes).
LARGE_GC = 50
HOME_OPTION = typer.Option(".causalcast", "--home", envvar="CAUSALCAST_REGISTRY_URL",
                           help="Where results are kept (same as `causalcast run`): a folder, "
                                "or a postgresql:// URL (artifacts from "
                                "CAUSALCAST_ARTIFACTS_URL).")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")


@contextmanager
def _open(home: str, create: bool = False, damaged_is_a_problem: bool = False
          ) -> Iterator[Registry]:
    """The registry under ``home``; never creates one. Errors become one line and exit 2,
    except damage when the caller reports it itself (`verify`)."""
    try:
        reg = Registry.open(registry_home(home), create=create)
    except DamagedError:
        if damaged_is_a_problem:
            raise
        with clear_errors():
            raise
    except RegistryError:
        with clear_errors():
            raise
    try:
        with clear_errors():
            yield reg
    finally:
        reg.close()


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    return {"ref": v.ref, **asdict(v)}


def _headline(v: ModelVersion) -> tuple[Any, ...]:
    metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())
                        if isinstance(val, int | float) and not isinstance(val, bool))[:60]
    return (v.version_id, v.ref, v.stage, v.artifact_sha256[:12], v.run_id or "",
            v.created_at[:19], metrics)


@registry_app.command("list")
def list_versions(
    name: str = typer.Option(None, "--name", help="Only versions of this name."),
    stage: str = typer.Option(None, "--stage", help=f"Only this stage: {', '.join(STAGES)}."),
    run: str = typer.Option(None, "--run", help="Only versions of this run."),
    runs: bool = typer.Option(False, "--runs", metavar="",
                              help="List runs with job progress instead."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List model versions (or runs with --runs)."""
    with _open(home) as reg:
        if runs:
            rows = [{**asdict(r), "jobs": reg.progress(r.run_id)} for r in reg.runs()]
            if as_json:
                print_json(rows)
                return
            console.print(table("Runs", ["run", "name", "status", "done", "failed", "pending",
                                         "running", "created"],
                                [(r["run_id"], r["name"], r["status"], r["jobs"]["done"],
                                  r["jobs"]["failed"], r["jobs"]["pending"],
                                  r["jobs"]["running"], r["created_at"][:19]) for r in rows]))
            return
        versions = reg.versions(name, stage, run)
    if as_json:
        print_json([_version_dict(v) for v in versions])
        return
    console.print(table(f"{len(versions)} model versions",
                        ["id", "version", "stage", "artifact", "run", "created", "metrics"],
                        [_headline(v) for v in versions]))


@registry_app.command("show")
def show(
    ref: str = typer.Argument(None, help="Version: id, name:version or name@stage."),
    run: str = typer.Option(None, "--run", help="Show a run's jobs (errors included) instead."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one version (config, metrics, lineage, stage history) or one run's jobs."""
    if (ref is None) == (run is None):
        fail("give a version reference or --run RUN_ID (one of them)")
    with _open(home) as reg:
        if run is not None:
            info = reg.get_run(run)
            jobs = reg.jobs(run)
            if as_json:
                print_json({**asdict(info), "jobs": [asdict(j) for j in jobs]})
                return
            console.print(table(f"Run {run} ({info.status})",
                                ["symbol", "model", "fold", "status", "attempts", "seconds",
                                 "version", "error"],
                                [(j.symbol, j.model, j.fold, j.status, j.attempts,
                                  "" if j.seconds is None else f"{j.seconds:.2f}",
                                  j.version_id or "", (j.error or "")[:60]) for j in jobs]))
            return
        version = reg.get_version(ref)
        history = reg.history(version.name)
    mine = [asdict(e) for e in history if e.version_id == version.version_id]
    if as_json:
        print_json({**_version_dict(version), "history": mine})
        return
    console.print(f"[bold]{version.ref}[/] (id {version.version_id}) stage "
                  f"[bold]{version.stage}[/], created {version.created_at}")
    for label, value in (("artifact", f"{version.artifact_sha256} ({version.artifact_size} "
                                      f"bytes)"),
                         ("run", version.run_id), ("data fingerprint", version.data_fingerprint),
                         ("code", json.dumps(version.code_version)),
                         ("features", json.dumps(version.feature_config)),
                         ("split", json.dumps(version.split_config)),
                         ("lineage", json.dumps(version.lineage)),
                         ("config", json.dumps(version.config)),
                         ("metrics", json.dumps(version.metrics))):
        console.print(f"  {label:>16}: {value}", highlight=False)
    console.print(table("Stage history", ["at", "from", "to", "action", "by", "reason"],
                        [(e["at"][:19], e["from_stage"] or "", e["to_stage"], e["action"],
                          e["by"], e["reason"]) for e in mine]))


@registry_app.command("verify")
def verify(home: str = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Re-hash every artifact and check every reference; exit 1 on any problem (a damaged
    database included: it is the first problem, and nothing else is checked against it)."""
    try:
        with _open(home, damaged_is_a_problem=True) as reg:
            report = reg.verify()
    except DamagedError as exc:
        report = VerifyReport(problems=[str(exc)])
    if as_json:
        print_json(report.to_dict())
    else:
        for problem in report.problems:
            err_console.print(f"[red]problem[/]: {problem}", highlight=False)
        for note in report.notes:
            console.print(f"[dim]note[/]: {note}", highlight=False)
        verdict = "[green]clean[/]" if report.ok else f"[red]{len(report.problems)} problems[/]"
        console.print(f"verify: {verdict}; {report.n_versions} versions, {report.n_objects} "
                      f"objects re-hashed")
    if not report.ok:
        raise typer.Exit(1)


@registry_app.command("promote")
def promote(
    ref: str = typer.Argument(..., help="Version: id, name:version or name@stage."),
    to: str = typer.Option("production", "--to", help=f"Target stage: {', '.join(STAGES)}."),
    reason: str = typer.Option("", "--reason", help="Why (recorded)."),
    by: str = typer.Option(None, "--by", help="Who (recorded); default: $CAUSALCAST_USER or "
                           "the login name."),
    gate: list[str] = typer.Option(None, "--gate", help="Gates to apply instead of the "
                                   "defaults (repeatable)."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Move a version to a stage; to production only if every gate passes (exit 1 if not)."""
    with _open(home) as reg:
        try:
            result = reg.promote(ref, stage=to, by=by or default_user(), reason=reason,
                                 gates=gate or None)
        except GateRefused as refused:
            if as_json:
                print_json({"promoted": False, "error": str(refused),
                            "gates": [r.to_dict() for r in refused.results]})
            else:
                console.print(table("Gates", ["gate", "passed", "detail"],
                                    [(r.gate, r.passed, r.detail) for r in refused.results]))
                err_console.print(f"[bold red]refused:[/] {refused}", highlight=False)
            raise typer.Exit(1) from None
    if as_json:
        print_json({"promoted": True, **_version_dict(result.version),
                    "gates": [r.to_dict() for r in result.gates]})
        return
    if result.gates:
        console.print(table("Gates", ["gate", "passed", "detail"],
                            [(r.gate, r.passed, r.detail) for r in result.gates]))
    console.print(f"[green]{result.version.ref}[/] is now {result.version.stage}")


@registry_app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Model name whose production version to roll back."),
    reason: str = typer.Option("", "--reason", help="Why (recorded)."),
    by: str = typer.Option(None, "--by", help="Who (recorded)."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Archive the production version and restore the one it replaced."""
    with _open(home) as reg:
        restored = reg.rollback(name, by=by or default_user(), reason=reason)
    if as_json:
        print_json(_version_dict(restored))
        return
    console.print(f"[green]{restored.ref}[/] is production again")


@registry_app.command("gc")
def gc(
    grace: float = typer.Option(DEFAULT_GRACE_S, "--grace", min=0.0,
                                help="Keep unreferenced objects younger than this (seconds)."),
    dry_run: bool = typer.Option(False, "--dry-run", metavar="", help="Report, delete nothing."),
    yes: bool = typer.Option(False, "--yes", metavar="", help=f"Delete even when more than "
                             f"{LARGE_GC} objects would go (otherwise a dry run is shown)."),
    force: bool = typer.Option(False, "--force", metavar="",
                               help="Run even though the database and the "
                               "objects disagree wholesale (after a deliberate recover)."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove artifacts no version references (safe while writers run). A large deletion is
    shown as a dry run first; rerun with --yes to delete."""
    with _open(home) as reg:
        report = reg.gc(grace, dry_run=True, force=force)
        large = len(report.removed) > LARGE_GC
        if not dry_run and (yes or not large):
            report = reg.gc(grace, force=force)
    if as_json:
        print_json({**report.to_dict(), "needs_yes": large and report.dry_run and not dry_run})
    else:
        verb = "would remove" if report.dry_run else "removed"
        console.print(f"gc: {verb} {len(report.removed)} objects ({report.bytes_freed} bytes), "
                      f"{report.temp_removed} stale temporary files; kept "
                      f"{report.kept_referenced} referenced and {report.kept_young} younger "
                      f"than {grace:g}s")
    if report.dry_run and not dry_run:
        err_console.print(f"gc: {len(report.removed)} objects is more than {LARGE_GC}: nothing "
                          f"deleted; check the list (--dry-run --json) and rerun with --yes",
                          highlight=False)
        raise typer.Exit(1)


@registry_app.command("backup")
def backup_command(
    dest: Path = typer.Argument(..., help="New home to copy the registry into (must not "
                                "hold a registry)."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Copy the registry (SQLite online backup + every referenced object, re-hashed) to DEST,
    then verify the copy. Safe while writers run."""
    local_home(home, "registry backup")
    with _open(home) as reg, clear_errors():
        report = maintenance.backup(reg, dest)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(f"backup: {report.n_versions} versions, {report.n_objects} objects "
                  f"({report.bytes_copied} bytes) copied to {dest} and verified", highlight=False)


@registry_app.command("restore")
def restore_command(
    source: Path = typer.Argument(..., help="A backup made by `causalcast registry backup`."),
    home: str = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Verify a backup and put it in place of --home's registry (stop writers first). The
    previous registry folder is moved aside, never deleted."""
    with clear_errors():
        moved = maintenance.restore(source, local_home(home, "registry restore"))
    if as_json:
        print_json({"restored_from": str(source), "previous_moved_to": moved and str(moved)})
        return
    console.print(f"restore: {home} now holds the backup {source}"
                  + (f"; the previous registry is in {moved}" if moved else ""), highlight=False)


@registry_app.command("recover")
def recover_command(home: str = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Rebuild a missing, empty or damaged database from the objects' own headers: each
    weights file becomes a candidate version `recovered/<model>/<scope>` (stop writers
    first; the damaged database is kept; promotions and metrics must be redone)."""
    with clear_errors():
        report = maintenance.recover(local_home(home, "registry recover"))
    if as_json:
        print_json(report.to_dict())
        return
    console.print(f"recover: {len(report.recovered)} versions rebuilt, {len(report.skipped)} "
                  f"objects skipped" + (f"; damaged database kept as {report.kept_damaged}"
                                        if report.kept_damaged else ""), highlight=False)
    for line in report.skipped:
        err_console.print(f"[yellow]skipped[/]: {line}", highlight=False)

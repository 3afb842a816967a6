"""A Ray task that records its own job into PostgreSQL + S3 (`recording.execute_and_record`),
run here in-process so its retry can be staged exactly: the node died after the task recorded
but before the driver heard of it, and Ray ran the task again, on a node that shares the job
folder (it finds its finished result) or one that does not (it trains again). Either way the
job stays done with its one version; and a driver told the task failed reports that version.
Where recording happens is one rule (`records_in_workers`), checked here too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from causalcast.data.resolve import resolve_source
from causalcast.registry import Registry, fingerprint_frames
from causalcast.training.plan import RunSpec, plan_run
from causalcast.training.recording import (
    InTaskRecording,
    RegistryRecorder,
    execute_and_record,
    records_in_workers,
)
from causalcast.training.worker import worker_label

pytestmark = pytest.mark.slow
SPEC = RunSpec(data="synthetic:2,300,0.5,4", models=("ridge",), scopes=("per-symbol",),
               horizons=(1,), lookback=8, seed=5)


def test_where_results_are_recorded_is_one_rule(tmp_path: Path) -> None:
    url = "postgresql://u@db/causalcast"
    assert records_in_workers(url, "ray")
    assert not records_in_workers(tmp_path, "ray")   # SQLite: on the driver's disk only
    assert not records_in_workers(str(tmp_path), "ray")
    assert not records_in_workers(url, "pool") and not records_in_workers(url, "inline")


def test_a_retried_task_that_had_recorded_registers_nothing_twice(
        tmp_path: Path, postgres_url: str, s3_url: str) -> None:
    frames, _ = resolve_source(SPEC.data, SPEC.symbols)
    out = tmp_path / "out"
    job = plan_run(SPEC, list(frames), out)[0]
    fingerprints = {job.spec.symbols: fingerprint_frames({s: frames[s]
                                                          for s in job.spec.symbols})}
    with Registry.open(postgres_url, artifacts=s3_url) as reg:
        reg.start_run("r", config={"spec": SPEC.to_dict(), "out": str(out)})
        reg.plan_jobs("r", [job.key])
        reg.job_started("r", job.key, worker="driver")
        where = InTaskRecording(postgres_url, reg.artifacts_url or "", "r", SPEC,
                                fingerprints, out)
        assert where.artifacts == s3_url

        first = execute_and_record(job, where)
        again = execute_and_record(job, where)       # re-run, finds its finished folder
        shutil.rmtree(job.job_dir)
        elsewhere = execute_and_record(job, where)   # re-run where the folder is not: trains

        reports = [o.report for o in (first, again, elsewhere)]
        assert [r.status for r in reports] == ["done"] * 3, [r.error for r in reports]
        assert len({r.version_id for r in reports}) == 1
        versions = reg.versions(run_id="r")
        assert [v.version_id for v in versions] == [reports[0].version_id]
        record = reg.meta.get_job("r", job.key)
        assert (record.status, record.version_id, record.attempts) == (
            "done", reports[0].version_id, 1)
        assert versions[0].lineage["extra"]["recorded_by"] == worker_label()
        assert reg.verify().ok

        # The driver hears only that the task died (its retries spent): it reports the job
        # done with the version the registry holds, and changes nothing.
        recorder = RegistryRecorder(reg, "r", SPEC, fingerprints, out, "driver",
                                    in_task=where)
        lost = recorder.lost(job, "ray: the node died")
        assert (lost.status, lost.version_id, lost.error) == ("done", reports[0].version_id,
                                                              None)
        assert reg.meta.get_job("r", job.key).status == "done"
        # A report the task made is passed on; the driver's folder copy is restored.
        shutil.rmtree(job.job_dir)
        passed = recorder.outcome(job, first)
        assert passed is first.report and (job.job_dir / "model.safetensors").is_file()
        assert len(reg.versions()) == 1

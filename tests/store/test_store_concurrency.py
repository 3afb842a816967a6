"""Issue 13 acceptance: 4 writer processes commit to one store while some are SIGKILLed; the
store reads back every committed batch and nothing partial, at every version, and the writers'
lock does not outlive a killed holder."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from causalcast.store import BarStore
from tests.support import store_workers as w

pytestmark = pytest.mark.slow

BATCHES = 12


def _stored_batches(frames: dict) -> dict[int, set[int]]:
    """Per writer, the batches stored, checking each batch is whole and its values exact."""
    out: dict[int, set[int]] = {}
    shared = frames.get("ALL")
    for i in range(w.N_WRITERS):
        private = frames.get(f"W{i}")
        ks = set()
        if private is not None:
            for when, close in private["close"].items():
                k = (when - w.START).days
                assert close == w.value(i, k), f"W{i} bar {when}: {close}"
                ks.add(k)
        in_shared = set()
        if shared is not None:
            for when, close in shared["close"].items():
                day = (when - w.START).days
                if day % w.N_WRITERS == i:
                    k = day // w.N_WRITERS
                    assert close == w.value(i, k), f"ALL bar {when}: {close}"
                    in_shared.add(k)
        assert ks == in_shared, f"writer {i}: a batch is half stored ({ks ^ in_shared})"
        assert ks == set(range(len(ks))), f"writer {i}: batches out of order {sorted(ks)}"
        out[i] = ks
    return out


def _ledger(root: Path, i: int) -> set[int]:
    path = root / f"ledger-{i}.txt"
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


def test_four_writers_with_sigkills_leave_every_committed_batch_and_nothing_partial(
        tmp_path: Path) -> None:
    root = tmp_path / "store"
    ctx = w.context()
    rng = random.Random(20261201)
    killed = 0
    for _round in range(3):
        done = _stored_batches(BarStore(root).read_many()) if root.exists() else {}
        ready = ctx.Semaphore(0)
        procs = [ctx.Process(target=w.writer,
                             args=(str(root), i, len(done.get(i, ())), BATCHES, ready))
                 for i in range(w.N_WRITERS)]
        for p in procs:
            p.start()
        for _ in procs:
            assert ready.acquire(timeout=60)
        for p in rng.sample(procs, 2):             # two of four writers die mid-work
            time.sleep(rng.uniform(0.05, 0.4))
            killed += p.is_alive()
            p.kill()
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode in (0, -signal.SIGKILL)
        stored = _stored_batches(BarStore(root).read_many())
        for i in range(w.N_WRITERS):               # what a writer was told is stored
            assert _ledger(tmp_path, i) <= stored[i]
    assert killed > 0, "no writer was killed mid-work"

    # Every version is whole, not just the last one.
    store = BarStore(root)
    for version in range(store.version() + 1):
        _stored_batches(store.read_many(version=version))
    # The lock a killed writer held is gone: one more process finishes every writer's batches.
    final = _stored_batches(store.read_many())
    ready = ctx.Semaphore(0)
    procs = [ctx.Process(target=w.writer, args=(str(root), i, len(final[i]), BATCHES, ready))
             for i in range(w.N_WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    complete = _stored_batches(BarStore(root).read_many())
    assert all(complete[i] == set(range(BATCHES)) for i in range(w.N_WRITERS))
    print(f"store kill test: {killed} writers killed mid-work, {store.version() + 1} versions "
          "checked")

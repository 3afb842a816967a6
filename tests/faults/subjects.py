"""The stores the fault-injection suite damages, each behind one small interface.

A subject builds a healthy store in a folder and knows: the file a fault damages (``target``),
the files that must come through untouched (``bystanders``), how the product reads the store
(``detect``: must refuse or fall back, and return the one-line message it gave), and how to
show that the rest still works (``rest_works``). To put another store under the same faults
(the data store, the prediction log), add a subclass to `SUBJECTS`; every fault then runs
against it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from causalcast.cli import app
from causalcast.registry import (
    ArtifactError,
    FileArtifactStore,
    Lineage,
    Registry,
    RegistryError,
)
from causalcast.training.checkpoint import (
    POINTER,
    TrainState,
    restore_checkpoint,
    save_checkpoint,
)
from causalcast.weights import serialize

LINEAGE = Lineage("c" * 64, {"lookback": 8}, {"n_folds": 2})


def weights(seed: int) -> bytes:
    return serialize({"w": torch.full((64, 64), float(seed))}, {"seed": seed})[0]


def one_line(text: str) -> str:
    """Rich wraps long lines on narrow terminals (keeping the spaces); undo the wrapping."""
    return text.replace("\n", "")


class Subject:
    name = "subject"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def target(self) -> Path:
        raise NotImplementedError

    def bystanders(self) -> list[Path]:
        """Every file of the store except the target (they must stay byte-identical)."""
        return sorted(p for p in self.folder.rglob("*") if p.is_file() and not p.is_symlink()
                      and p != self.target and not p.name.endswith((".lock", "-shm")))

    def detect(self) -> str:
        raise NotImplementedError

    def rest_works(self) -> None:
        raise NotImplementedError


class RegistryDatabase(Subject):
    """``registry.db``: refused on open, by every read-only command, and by gc."""

    name = "registry-db"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        with Registry.open(folder) as reg:
            for i in range(30):
                reg.register_version(f"m{i % 3}", weights(i), {"i": i}, {}, LINEAGE)
        db = self.target
        con = sqlite3.connect(db)  # fold the WAL in: the file alone holds the registry
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)

    @property
    def target(self) -> Path:
        return self.folder / "registry" / "registry.db"

    def detect(self) -> str:
        with pytest.raises(RegistryError) as refused:
            Registry.open(self.folder, create=False)
        with pytest.raises(RegistryError):
            Registry.open(self.folder, create=True)  # never recreated over the objects
        runner = CliRunner()
        for command in (["list"], ["verify"], ["gc", "--grace", "0", "--yes"]):
            result = runner.invoke(app, ["registry", *command, "--home", str(self.folder)])
            assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
            assert "registry.db" in one_line(result.output), result.output
        return str(refused.value)

    def rest_works(self) -> None:
        """The objects are the rest: all still there and sound (recover can rebuild)."""
        store = FileArtifactStore(self.folder / "registry", create=False)
        digests = list(store.digests())
        assert len(digests) == 30 and all(store.check(d) is None for d in digests)


class Artifact(Subject):
    """One version's object: refused on load and promotion, reported by verify; the other
    versions load and the registry keeps registering."""

    name = "artifact"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        with Registry.open(folder) as reg:
            self.victim = reg.register_version("m", weights(1), {}, {}, LINEAGE)
            self.other = reg.register_version("m", weights(2), {}, {}, LINEAGE)
            self.path = reg.artifacts.path(self.victim.artifact_sha256)
        self.path.chmod(0o644)  # faults write through the read-only mode, as a disk error would

    @property
    def target(self) -> Path:
        return self.path

    def detect(self) -> str:
        with Registry.open(self.folder) as reg:
            with pytest.raises(ArtifactError) as refused:
                reg.load_artifact(self.victim)
            with pytest.raises(ArtifactError):
                reg.promote(self.victim.ref, gates=[])
            assert reg.get_version(self.victim.ref).stage == "candidate"
            problems = reg.verify().problems
            assert problems and all(self.victim.artifact_sha256 in p for p in problems), problems
        return str(refused.value)

    def rest_works(self) -> None:
        with Registry.open(self.folder) as reg:
            assert reg.load_artifact(self.other) == weights(2)
            reg.promote(self.other.ref, gates=[])
            new = reg.register_version("m", weights(3), {}, {}, LINEAGE)
            assert reg.load_artifact(new) == weights(3)
            assert reg.gc(grace_s=0).removed == []  # the damaged object is not garbage


class Checkpoint(Subject):
    """The latest checkpoint: resume falls back to the previous one, logged."""

    name = "checkpoint"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.saved = []
        model, opt = self._parts(0)
        for epoch in (1, 2):
            model(torch.ones(2, 3)).sum().backward()
            opt.step()
            save_checkpoint(folder, model=model, optimizer=opt, scheduler=None,
                            state=TrainState(epoch=epoch), best=None, run_key="run")
            self.saved.append({k: v.clone() for k, v in model.state_dict().items()})
        import json

        self.stem = json.loads((folder / POINTER).read_text())["stem"]

    @staticmethod
    def _parts(seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(seed)
        model = nn.Linear(3, 2)
        return model, torch.optim.AdamW(model.parameters(), lr=0.01)

    @property
    def target(self) -> Path:
        return self.folder / f"{self.stem}.safetensors"

    def detect(self) -> str:
        model, opt = self._parts(7)
        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        log = logging.getLogger("causalcast.training.checkpoint")
        log.addHandler(handler)
        try:
            state, _ = restore_checkpoint(self.folder, model=model, optimizer=opt,
                                          scheduler=None, run_key="run")
        finally:
            log.removeHandler(handler)
        assert state.epoch == 1  # nothing loaded from the damaged checkpoint
        assert all(torch.equal(v, self.saved[0][k]) for k, v in model.state_dict().items())
        assert len(records) == 1
        return records[0].getMessage()

    def rest_works(self) -> None:
        model, opt = self._parts(0)
        save_checkpoint(self.folder, model=model, optimizer=opt, scheduler=None,
                        state=TrainState(epoch=3), best=None, run_key="run")
        state, _ = restore_checkpoint(self.folder, model=model, optimizer=opt, scheduler=None,
                                      run_key="run")
        assert state.epoch == 3


class _Store(Subject):
    """The market data store (Delta tables under ``.causalcast/data``): three commits, one
    symbol each, and an option chain beside the bars."""

    def __init__(self, folder: Path) -> None:
        from causalcast.store import BarStore, ChainStore
        from tests.support.frames import random_ohlcv

        super().__init__(folder)
        self.bars = BarStore(folder)
        for seed, symbol in enumerate(("AAA", "BBB", "CCC"), 1):
            self.bars.write({symbol: random_ohlcv(80, seed=seed)})
        self.aaa = self.bars.read("AAA")
        self.catalog = self.bars.catalog()
        self.chains = ChainStore(folder)
        self.table = folder / "bars"

    def _commit_file(self, version: int) -> Path:
        return self.table / "_delta_log" / f"{version:020d}.json"

    def _data_file(self, version: int) -> Path:
        import json
        from urllib.parse import unquote

        lines = self._commit_file(version).read_text().splitlines()
        adds = [json.loads(line)["add"]["path"] for line in lines if '"add"' in line]
        return self.table / unquote(adds[0])

    def _refused(self) -> str:
        """Every read of the current version refuses, and so does the CLI (one line)."""
        from causalcast.store.integrity import StoreDamagedError

        messages = []
        for read in (lambda: self.bars.read("BBB"), self.bars.read_many):
            with pytest.raises(StoreDamagedError) as refused:
                read()
            messages.append(str(refused.value))
        assert len(set(messages)) == 1, messages
        try:   # the catalog reads a few columns: refused, or exactly what was stored
            assert self.bars.catalog() == self.catalog
        except StoreDamagedError as exc:
            assert str(exc) == messages[0]
        result = CliRunner().invoke(app, ["data", "show", "BBB", "--store", str(self.folder)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert self.target.name in one_line(result.output), result.output
        return messages[0]

    def _chains_work(self) -> None:
        quotes = pd.DataFrame({
            "expiry": pd.Timestamp("2030-01-18"), "strike": [90.0, 110.0],
            "type": ["call", "put"], "bid": [11.0, 9.0], "ask": [11.5, 9.5],
            "last": [11.2, 9.2], "volume": [1.0, 2.0], "open_interest": [10.0, 20.0],
            "spot": 100.0, "as_of": pd.Timestamp("2029-06-01", tz="UTC")})
        self.chains.write("AAA", quotes)
        assert len(self.chains.read("AAA")) == 2


class StoreLog(_Store):
    """A commit file in the middle of the bars table's log: every read and write of the
    table refuses (nothing served around the damage), chains keep working."""

    name = "store-log"

    @property
    def target(self) -> Path:
        return self._commit_file(1)

    def detect(self) -> str:
        from causalcast.store.integrity import StoreDamagedError
        from tests.support.frames import random_ohlcv

        message = self._refused()
        with pytest.raises(StoreDamagedError):   # nothing is written over the damage
            self.bars.write({"DDD": random_ohlcv(80, seed=9)})
        return message

    def rest_works(self) -> None:
        self._chains_work()


class StoreData(_Store):
    """The data file the second commit added: the current version refuses; the version
    before it (which never held that file) and the chains keep working."""

    name = "store-data"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.path = self._data_file(1)

    @property
    def target(self) -> Path:
        return self.path

    def detect(self) -> str:
        """BBB's bars (in the damaged file) are refused. A read of AAA alone may skip that
        file (its statistics rule it out) and then must return AAA's stored bars exactly."""
        from causalcast.store.integrity import StoreDamagedError

        message = self._refused()
        try:
            pd.testing.assert_frame_equal(self.bars.read("AAA"), self.aaa)
        except StoreDamagedError as exc:
            assert str(exc) == message
        return message

    def rest_works(self) -> None:
        assert sorted(self.bars.read_many(version=0)) == ["AAA"]
        self._chains_work()


SUBJECTS: dict[str, type[Subject]] = {s.name: s for s in (RegistryDatabase, Artifact,
                                                          Checkpoint, StoreLog, StoreData)}

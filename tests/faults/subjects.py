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


SUBJECTS: dict[str, type[Subject]] = {s.name: s for s in (RegistryDatabase, Artifact,
                                                          Checkpoint)}

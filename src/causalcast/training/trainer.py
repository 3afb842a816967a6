"""The training loop: explicit PyTorch, so rollback and batch halving are ours to define.

AdamW, ReduceLROnPlateau on the validation loss, gradient clipping, early stopping on the
fold's validation range (best weights restored at the end), deterministic by seed: the
epoch's sample order is ``default_rng([seed, epoch]).permutation`` and every RNG in use is
checkpointed, so a resumed run replays exactly the steps the uninterrupted run would take.

Failures (docs/design.md invariant 6):

* a checkpoint at every epoch end (and before the first epoch), see `checkpoint.py`;
* NaN/Inf loss or gradient norm: restore the last good checkpoint, halve the learning rate,
  retry; after `max_nan_retries` a `TrainingFailed` with a failure record;
* out of memory (a ``RuntimeError`` mentioning "out of memory"): halve the batch and retry
  the same samples; bounded by `max_oom_retries` and `min_batch_size`;
* SIGINT/SIGTERM: the current step finishes, a checkpoint records the position inside the
  epoch, and `TrainingInterrupted` says how to resume. A second signal stops at once (files
  are atomic, so that is safe too).

Every epoch's metrics (and every event) are appended to ``metrics.jsonl`` and fsynced before
the checkpoint is written, so a crash loses nothing already measured.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from causalcast.augment import BatchAugmenter
from causalcast.config import AugmentConfig
from causalcast.io import atomic_write_json, atomic_write_text
from causalcast.models.base import ForecastModel
from causalcast.models.heads import negative_log_likelihood
from causalcast.training.checkpoint import (
    TrainState,
    has_checkpoint,
    restore_checkpoint,
    save_checkpoint,
)
from causalcast.training.data import TrainingData
from causalcast.training.progress import Reporter, SilentReporter

METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
FAILURE = "failure.json"


class TrainingFailed(RuntimeError):
    """Training gave up (bounded retries exhausted); `record` is also in failure.json."""

    def __init__(self, message: str, record: dict[str, Any]):
        super().__init__(message)
        self.record = record


class TrainingInterrupted(RuntimeError):
    """SIGINT/SIGTERM: a checkpoint was written; the message says how to resume."""

    def __init__(self, message: str, signal_name: str, checkpoint: Path):
        super().__init__(message)
        self.signal_name = signal_name
        self.checkpoint = checkpoint


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 4              # early stopping: epochs without validation improvement
    min_delta: float = 1e-4
    lr_patience: int = 1           # ReduceLROnPlateau
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    eval_batch_size: int = 2048
    max_nan_retries: int = 3
    max_oom_retries: int = 6
    min_batch_size: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size", "min_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepInfo:
    epoch: int        # 1-based epoch being trained
    step: int         # optimizer steps already taken in this epoch
    position: int     # samples already consumed in this epoch
    batch_size: int


@dataclass
class TrainHooks:
    """Test hooks (fault injection through the real loop, no mock model).

    ``before_step(info)`` runs before the forward pass and may raise (e.g. a simulated
    out-of-memory ``RuntimeError``); ``after_loss(info, loss)`` may return a replacement loss
    (e.g. NaN); ``after_epoch(epoch)`` runs after each epoch's checkpoint."""

    before_step: Callable[[StepInfo], None] | None = None
    after_loss: Callable[[StepInfo, torch.Tensor], torch.Tensor] | None = None
    after_epoch: Callable[[int], None] | None = None


@dataclass
class TrainOutcome:
    epochs: int
    best_epoch: int
    best_val_loss: float | None
    stopped_early: bool
    resumed: bool
    final_lr: float
    final_batch_size: int
    nan_retries: int
    oom_retries: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower())


class SignalGuard:
    """Turns the first SIGINT/SIGTERM into a flag checked between steps (main thread only:
    elsewhere Python cannot install handlers, and the caller's handling applies)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # second signal: stop now
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        self.received = signal.Signals(signum).name

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it: the line survives a crash right after."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True, default=float) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line from a crash mid-write
    return out


class Trainer:
    """Fits one model on one fold's `TrainingData`, writing into `out_dir`."""

    def __init__(self, model: ForecastModel, data: TrainingData, config: TrainConfig,
                 out_dir: str | Path, *, run_key: str, hooks: TrainHooks | None = None,
                 reporter: Reporter | None = None, augment: AugmentConfig | None = None,
                 label: str | None = None, resume_hint: str = "rerun with --resume",
                 device: torch.device | str = "cpu"):
        # Closed-form models fit in numpy: nothing to move. A trained model goes back to the
        # CPU at the end of `fit`, so bundles, predictions and serving never see the device.
        self.device = torch.device(device) if model.trainable else torch.device("cpu")
        model.to(self.device)
        self.model, self.data, self.config = model, data, config
        self.out = Path(out_dir)
        self.ckpt_dir = self.out / CHECKPOINTS
        self.metrics_path = self.out / METRICS
        self.run_key = run_key
        self.hooks = hooks or TrainHooks()
        self.reporter = reporter or SilentReporter()
        self.augmenter = BatchAugmenter(augment) if augment and augment.enabled else None
        self.label = label or model.name
        self.resume_hint = resume_hint
        self.train_rows = data.rows("train")
        self.val_rows = data.rows("val")
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay) \
            if model.trainable else None
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience,
            min_lr=config.min_lr) if self.optimizer is not None else None
        self.state = TrainState(batch_size=config.batch_size)
        self.best: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []

    # ----- bookkeeping ----------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer else 0.0

    def _generators(self) -> dict[str, np.random.Generator]:
        return {"augment": self.augmenter.rng} if self.augmenter else {}

    def _event(self, event: str, message: str, epoch: int | None = None,
               **extra: Any) -> None:
        """Append an event; `epoch` defaults to the epoch in progress."""
        record = {"kind": "event", "event": event, "message": message,
                  "epoch": self.state.epoch + 1 if epoch is None else epoch,
                  "step": self.state.step,
                  "time": time.time(), **extra}
        append_jsonl(self.metrics_path, record)
        self.reporter.event(record)

    def _checkpoint(self) -> Path:
        return save_checkpoint(self.ckpt_dir, model=self.model, optimizer=self.optimizer,
                               scheduler=self.scheduler, state=self.state, best=self.best,
                               run_key=self.run_key, generators=self._generators())

    def _restore(self) -> None:
        self.state, self.best = restore_checkpoint(
            self.ckpt_dir, model=self.model, optimizer=self.optimizer,
            scheduler=self.scheduler, run_key=self.run_key, generators=self._generators())

    def _fail(self, reason: str, **extra: Any) -> TrainingFailed:
        record = {"model": self.model.name, "reason": reason, "epoch": self.state.epoch + 1,
                  "step": self.state.step, "lr": self.lr, "batch_size": self.state.batch_size,
                  "nan_retries": self.state.nan_retries,
                  "oom_retries": self.state.oom_retries, **extra}
        atomic_write_json(self.out / FAILURE, record)
        self._event("failed", reason)
        return TrainingFailed(f"{self.label}: {reason}", record)

    def _start(self, resume: bool) -> bool:
        """Fresh start (initial checkpoint) or restore; returns whether it resumed."""
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and has_checkpoint(self.ckpt_dir):
            self._restore()
            kept = [r for r in read_jsonl(self.metrics_path)
                    if r.get("kind") != "epoch" or r["epoch"] <= self.state.epoch]
            atomic_write_text(self.metrics_path, "".join(
                json.dumps(r, sort_keys=True) + "\n" for r in kept))
            self.history = [r for r in kept if r.get("kind") == "epoch"]
            self._event("resumed", f"from epoch {self.state.epoch} "
                                   f"(+{self.state.position} samples)")
            return True
        for old in self.ckpt_dir.glob("*"):
            old.unlink()
        self.metrics_path.unlink(missing_ok=True)
        (self.out / FAILURE).unlink(missing_ok=True)
        self._checkpoint()
        return False

    # ----- the loop -------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainOutcome:
        started = time.perf_counter()
        if not self.model.trainable:
            return self._fit_closed_form(started)
        resumed = self._start(resume)
        steps = math.ceil(len(self.train_rows) / self.state.batch_size)
        self.reporter.start(self.label, self.config.epochs, steps)
        try:
            with SignalGuard() as guard:
                while not self.state.finished:
                    if self.state.epoch >= self.config.epochs:
                        self.state.finished = True
                        break
                    status = self._train_epoch(guard)
                    if status == "ok":
                        val_loss, val_acc = self.evaluate(self.val_rows)
                        status = "ok" if math.isfinite(val_loss) else "nan"
                    if status == "nan":
                        self._rollback()
                        continue
                    self._end_epoch(val_loss, val_acc, guard)
            if self.best is not None:
                self.model.load_state_dict(self.best)
        finally:
            self.reporter.close()
            self.model.to("cpu")
        return TrainOutcome(
            epochs=self.state.epoch, best_epoch=self.state.best_epoch,
            best_val_loss=self.state.best_val, stopped_early=self.state.stopped_early,
            resumed=resumed, final_lr=self.lr, final_batch_size=self.state.batch_size,
            nan_retries=self.state.nan_retries, oom_retries=self.state.oom_retries,
            seconds=time.perf_counter() - started, history=self.history)

    def _interrupt(self, guard: SignalGuard) -> TrainingInterrupted:
        path = self._checkpoint()
        message = (f"{self.label}: stopped by {guard.received} at epoch {self.state.epoch + 1}, "
                   f"{self.state.position} samples in; checkpoint saved to {path}. "
                   f"To resume: {self.resume_hint}")
        self._event("interrupted", message, signal=guard.received)
        return TrainingInterrupted(message, guard.received or "signal", path)

    def _batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data.x(rows)
        if self.augmenter is not None:
            x = self.augmenter(x)
        return (torch.from_numpy(x).to(self.device),
                torch.from_numpy(self.data.y_std[rows]).to(self.device))

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loc, scale = self.model(x)
        cfg = self.model.config
        return negative_log_likelihood(loc, scale, y, cfg.likelihood, cfg.df)

    def _train_epoch(self, guard: SignalGuard) -> str:
        cfg, st = self.config, self.state
        epoch = st.epoch + 1
        self._epoch_started = time.perf_counter()
        order = self.train_rows[np.random.default_rng([cfg.seed, epoch])
                                .permutation(len(self.train_rows))]
        self.model.train()
        while st.position < len(order):
            if guard.received:
                raise self._interrupt(guard)
            rows = order[st.position: st.position + st.batch_size]
            info = StepInfo(epoch, st.step, st.position, st.batch_size)
            try:
                if self.hooks.before_step:
                    self.hooks.before_step(info)
                x, y = self._batch(rows)
                loss = self._loss(x, y)
                if self.hooks.after_loss:
                    loss = self.hooks.after_loss(info, loss)
                if not torch.isfinite(loss):
                    return "nan"
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                if not torch.isfinite(norm):
                    return "nan"
                self.optimizer.step()
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                self._halve_batch(exc, info)
                continue
            st.position += len(rows)
            st.step += 1
            st.loss_sum += float(loss.detach()) * len(rows)
            st.loss_count += len(rows)
            self.reporter.step(st.position, len(order))
        return "ok"

    def _halve_batch(self, exc: BaseException, info: StepInfo) -> None:
        st = self.state
        new = st.batch_size // 2
        if st.oom_retries >= self.config.max_oom_retries or new < self.config.min_batch_size:
            raise self._fail(f"out of memory at batch size {st.batch_size}; gave up after "
                             f"{st.oom_retries} halvings", error=str(exc)) from exc
        st.oom_retries += 1
        self._event("oom", f"out of memory at batch {st.batch_size}: retrying the same "
                           f"samples with batch {new}", old_batch_size=st.batch_size,
                    batch_size=new, error=str(exc)[:200])
        st.batch_size = new

    def _rollback(self) -> None:
        st = self.state
        retries, batch_size = st.nan_retries + 1, st.batch_size
        if retries > self.config.max_nan_retries:
            raise self._fail(f"loss not finite after {st.nan_retries} rollbacks with halved "
                             f"learning rate (lr now {self.lr:.2e})")
        failed_at = (st.epoch + 1, st.step)
        failed_lrs = [group["lr"] for group in self.optimizer.param_groups]
        self._restore()
        self.state.nan_retries = retries
        self.state.batch_size = min(batch_size, self.state.batch_size)  # OOM is not undone
        old = failed_lrs[0]
        for group, lr in zip(self.optimizer.param_groups, failed_lrs, strict=True):
            group["lr"] = lr * 0.5     # half of the rate that failed: repeated retries compound
        self._event("nan_rollback", f"loss not finite at epoch {failed_at[0]} step "
                                    f"{failed_at[1]}; restored epoch {self.state.epoch} "
                                    f"checkpoint, lr {old:.2e} -> {self.lr:.2e} "
                                    f"(retry {retries}/{self.config.max_nan_retries})",
                    lr_before=old, lr_after=self.lr, retry=retries)

    def _end_epoch(self, val_loss: float, val_acc: float | None, guard: SignalGuard) -> None:
        cfg, st = self.config, self.state
        epoch = st.epoch + 1
        train_loss = st.loss_sum / max(st.loss_count, 1)
        lr_before = self.lr
        self.scheduler.step(val_loss)
        improved = st.best_val is None or val_loss < st.best_val - cfg.min_delta
        if improved:
            st.best_val, st.best_epoch, st.bad_epochs = val_loss, epoch, 0
            self.best = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            st.bad_epochs += 1
        st.epoch, st.position, st.step, st.loss_sum, st.loss_count = epoch, 0, 0, 0.0, 0
        if st.bad_epochs >= cfg.patience:
            st.stopped_early = True
        if st.stopped_early or epoch >= cfg.epochs:
            st.finished = True
        record = {"kind": "epoch", "epoch": epoch, "train_loss": train_loss,
                  "val_loss": val_loss, "val_dir_acc": val_acc, "lr": self.lr,
                  "batch_size": st.batch_size, "best": improved, "time": time.time(),
                  "seconds": time.perf_counter() - self._epoch_started}
        append_jsonl(self.metrics_path, record)
        self.history.append(record)
        self._checkpoint()
        self.reporter.epoch(record)
        if self.lr < lr_before:
            self._event("lr_reduced", f"validation loss did not improve: lr {lr_before:.2e} "
                                      f"-> {self.lr:.2e}", epoch=epoch,
                        lr_before=lr_before, lr_after=self.lr)
        if st.stopped_early:
            self._event("early_stop", f"no validation improvement for {cfg.patience} epochs; "
                                      f"keeping epoch {st.best_epoch} "
                                      f"(val {st.best_val:.4f})", epoch=epoch)
        if self.hooks.after_epoch:
            self.hooks.after_epoch(epoch)
        if guard.received and not st.finished:
            raise self._interrupt(guard)

    # ----- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, rows: np.ndarray) -> tuple[float, float | None]:
        """Mean NLL (standardised units) and first-horizon directional accuracy on `rows`."""
        self.model.eval()
        total, hits, n = 0.0, 0, 0
        cfg = self.model.config
        zero = torch.from_numpy(self.data.zero_point.astype(np.float32)).to(self.device)
        bs = self.config.eval_batch_size
        for start in range(0, len(rows), bs):
            chunk = rows[start: start + bs]
            x = torch.from_numpy(self.data.x(chunk)).to(self.device)
            y = torch.from_numpy(self.data.y_std[chunk]).to(self.device)
            loc, scale = self.model(x)
            total += float(negative_log_likelihood(loc, scale, y, cfg.likelihood,
                                                   cfg.df)) * len(chunk)
            hits += int(((loc[:, 0] > zero[0]) == (y[:, 0] > zero[0])).sum())
            n += len(chunk)
        self.model.train()
        return total / max(n, 1), (hits / n if n else None)

    def _fit_closed_form(self, started: float) -> TrainOutcome:
        self.out.mkdir(parents=True, exist_ok=True)
        rows = self.train_rows
        self.model.fit_closed_form(self.data.x_last(rows), self.data.y_std[rows],
                                   self.data.zero_point)
        val_loss, val_acc = self.evaluate(self.val_rows)
        record = {"kind": "epoch", "epoch": 1, "train_loss": self.evaluate(rows)[0],
                  "val_loss": val_loss, "val_dir_acc": val_acc, "lr": 0.0,
                  "batch_size": len(rows), "best": True, "time": time.time(),
                  "seconds": time.perf_counter() - started}
        self.metrics_path.unlink(missing_ok=True)
        append_jsonl(self.metrics_path, record)
        return TrainOutcome(epochs=1, best_epoch=1, best_val_loss=val_loss,
                            stopped_early=False, resumed=False, final_lr=0.0,
                            final_batch_size=len(rows), nan_retries=0, oom_retries=0,
                            seconds=time.perf_counter() - started, history=[record])

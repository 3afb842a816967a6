"""What the terminal shows while training: epochs, losses, LR changes, early stop, saves.

`RunProgress` shows a whole run (jobs done / failed / running / left). `ConsoleReporter`
prints one line per epoch and per event with rich, plus a step progress
bar when the console is a terminal; `SilentReporter` (workers, tests) prints nothing. The
metrics themselves are persisted by the trainer, not here.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Reporter(Protocol):
    def start(self, label: str, epochs: int, steps: int) -> None: ...
    def step(self, done: int, total: int) -> None: ...
    def epoch(self, record: dict[str, Any]) -> None: ...
    def event(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def start(self, label: str, epochs: int, steps: int) -> None:
        pass

    def step(self, done: int, total: int) -> None:
        pass

    def epoch(self, record: dict[str, Any]) -> None:
        pass

    def event(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


_EVENT_STYLE = {"nan_rollback": "bold yellow", "oom": "bold yellow", "lr_reduced": "cyan",
                "early_stop": "green", "interrupted": "bold red", "resumed": "cyan",
                "failed": "bold red"}


class ConsoleReporter:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.label = ""
        self.epochs = 0
        self._progress: Progress | None = None
        self._task = None

    def start(self, label: str, epochs: int, steps: int) -> None:
        self.label, self.epochs = label, epochs
        if self.console.is_terminal:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(label, total=steps)

    def step(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def epoch(self, r: dict[str, Any]) -> None:
        acc = r.get("val_dir_acc")
        mark = " [green]*best[/]" if r.get("best") else ""
        self.console.print(
            f"[bold]{self.label}[/] epoch {r['epoch']:>3}/{self.epochs}  "
            f"train {r['train_loss']:.4f}  val {r['val_loss']:.4f}"
            + (f"  dir-acc {acc:.3f}" if acc is not None else "")
            + f"  lr {r['lr']:.2e}  bs {r['batch_size']}  {r['seconds']:.1f}s"
            + f"  [dim]checkpoint saved[/]{mark}", highlight=False)

    def event(self, r: dict[str, Any]) -> None:
        style = _EVENT_STYLE.get(r["event"], "white")
        self.console.print(f"[bold]{self.label}[/] [{style}]{r['event']}[/]: {r['message']}",
                           highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class RunProgress:
    """One progress line for the whole run (done / failed / running / left, ETA) and one
    printed line per finished job. ETA = mean wall time per job finished in this call × jobs
    left: honest once a few jobs are in, and shown as "?" before."""

    def __init__(self, total: int, already: int, console: Console | None, enabled: bool):
        self.total, self.already = total, already
        self.done = self.failed = self.running = 0
        self.started = time.perf_counter()
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(TextColumn("[bold]training[/]"), BarColumn(),
                                      MofNCompleteColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=self.console,
                                      transient=False)
            self._task = self._progress.add_task(self._text(), total=total, completed=already)
            self._progress.start()

    def _text(self) -> str:
        left = self.total - self.already - self.done - self.failed
        finished = self.done + self.failed
        eta = "?"
        if finished and left:
            eta = f"{(time.perf_counter() - self.started) / finished * left:.0f}s"
        elif not left:
            eta = "0s"
        return (f"[green]{self.already + self.done} done[/] [red]{self.failed} failed[/] "
                f"{self.running} running {left} left  ETA {eta}")

    def update(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.already + self.done + self.failed,
                                  description=self._text())

    def finished(self, report: Any) -> None:
        if report.status == "done":
            self.done += 1
        else:
            self.failed += 1
        if self.enabled:
            if report.status == "done":
                acc = "-" if report.dir_acc is None else f"{report.dir_acc:.3f}"
                line = (f"[green]done[/] {report.label}  {report.seconds or 0:.1f}s  "
                        f"dir-acc {acc}  -> {report.version}")
            else:
                line = f"[red]failed[/] {report.label}: {report.error}"
            self.console.print(line, highlight=False)
        self.update()

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()
            self._progress = None

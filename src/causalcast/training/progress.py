"""What the terminal shows while training: epochs, losses, LR changes, early stop, saves.

`ConsoleReporter` prints one line per epoch and per event with rich, plus a step progress
bar when the console is a terminal; `SilentReporter` (workers, tests) prints nothing. The
metrics themselves are persisted by the trainer, not here.
"""

from __future__ import annotations

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

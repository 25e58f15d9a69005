"""Progress: a rich bar per epoch with live loss and metrics on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .callbacks import Callback


def _fmt(logs: dict) -> str:
    parts = []
    for key, value in logs.items():
        if key in ("epoch", "time_s"):
            continue
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}" if key == "lr" else f"{key} {value:.4f}")
    return " - ".join(parts)


class Progress(Callback):
    """Reports epochs and messages; `live` (a terminal) shows a bar updated every few steps."""

    def __init__(self, epochs: int, steps: int, stream: TextIO | None = None, enabled: bool = True,
                 live: bool | None = None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.live = enabled and (self.stream.isatty() if live is None else live)
        self.epochs, self.steps = epochs, steps
        self._bar = None
        self._task = None
        self._last = 0.0
        self._start = time.perf_counter()

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        self._start = time.perf_counter()
        if not self.live:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(TextColumn(f"epoch {epoch}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[logs]}"),
                                 console=Console(file=self.stream), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("train", total=self.steps, completed=trainer.first_step, logs="")

    def on_batch_end(self, trainer, epoch: int, step: int) -> None:
        # at most ~10 times a second: reading the running loss costs a device sync on CUDA
        if self._bar is None or time.perf_counter() - self._last < 0.1:
            return
        self._last = time.perf_counter()
        self._bar.update(self._task, completed=step, logs=_fmt(trainer.running_logs()))

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        self.close()
        if self.enabled:
            seconds = logs.get("time_s", time.perf_counter() - self._start)
            print(f"epoch {epoch}/{self.epochs} - {_fmt(logs)} - {seconds:.1f}s", file=self.stream, flush=True)

    def on_train_end(self, trainer, status: str) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

"""Progress: a rich bar per epoch with live loss and metrics on a terminal, plain lines otherwise."""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def _fmt(logs: dict) -> str:
    parts = []
    for key, value in logs.items():
        if key in ("epoch", "time_s"):
            continue
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}" if key == "lr" else f"{key} {value:.4f}")
    return " - ".join(parts)


class Progress:
    """Reports epochs; `live` (a TTY) shows a bar updated every few batches."""

    def __init__(self, epochs: int, steps: int, stream: TextIO | None = None, enabled: bool = True,
                 live: bool | None = None):
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.live = enabled and (self.stream.isatty() if live is None else live)
        self.epochs, self.steps = epochs, steps
        self._bar = None
        self._task = None
        self._last = 0.0

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, done_steps: int = 0) -> None:
        self._start = time.perf_counter()
        if not self.live:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
            TimeElapsedColumn

        console = Console(file=self.stream)
        self._bar = RichProgress(TextColumn(f"epoch {epoch}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[logs]}"), console=console,
                                 transient=True)
        self._bar.start()
        self._task = self._bar.add_task("train", total=self.steps, completed=done_steps, logs="")

    def wants_update(self) -> bool:
        """True at most ~10 times a second (reading the loss costs a device sync on CUDA)."""
        if self._bar is None:
            return False
        now = time.perf_counter()
        if now - self._last >= 0.1:
            self._last = now
            return True
        return False

    def update(self, step: int, logs: dict | None = None) -> None:
        if self._bar is not None:
            if logs is not None:
                self._bar.update(self._task, completed=step, logs=_fmt(logs))
            else:
                self._bar.update(self._task, completed=step)

    def end_epoch(self, epoch: int, logs: dict) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.enabled:
            seconds = logs.get("time_s", time.perf_counter() - self._start)
            print(f"epoch {epoch}/{self.epochs} - {_fmt(logs)} - {seconds:.1f}s", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)

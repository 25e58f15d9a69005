"""What training hands back: a TrainResult, or TrainingInterrupted when it was stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run.records import json_safe


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a callback's request_stop()): with `saved`, a checkpoint of this very step
    is in run_dir; without, the last epoch's checkpoint is."""

    def __init__(self, run_dir: Path | None, epoch: int, step: int, saved: bool):
        self.run_dir, self.epoch, self.step, self.saved = run_dir, epoch, step, saved
        super().__init__(f"interrupted at epoch {epoch}, step {step}")


@dataclass
class TrainResult:
    run_dir: Path | None
    epochs_run: int
    history: list[dict]
    metrics: dict  # of the kept weights: loss, metrics, val_loss, val_metrics
    best_epoch: int | None  # the epoch whose weights were kept (the best one with restore_best, else the last)
    stopped_early: bool
    status: str
    module: Any = field(repr=False, default=None)
    time_s: float = 0.0
    samples_per_s: float = 0.0
    is_main: bool = True  # False in DDP processes other than rank 0 (they write and print nothing)

    def to_json(self) -> dict:
        out = {"run_dir": str(self.run_dir) if self.run_dir else None, "epochs_run": self.epochs_run,
               "best_epoch": self.best_epoch, "stopped_early": self.stopped_early, "status": self.status,
               "val_loss": self.metrics.get("val_loss")}
        out.update(self.metrics)
        if "accuracy" in self.metrics:
            out.setdefault("val_accuracy", None)  # no validation data
        out["time_s"] = round(self.time_s, 3)
        out["samples_per_s"] = round(self.samples_per_s, 1)
        return json_safe(out)

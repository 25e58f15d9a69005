"""Callbacks: what happens around the fit loop's epochs and steps (spec_compiler/training/fit.py).

A callback subclasses `Callback` and overrides the hooks it needs; the loop calls every
callback's hooks in order. The built-in ones do the loop's bookkeeping: Progress
(progress.py), LRScheduler and ReduceLROnPlateau (the `schedule=`), EarlyStopping,
Checkpoint (resume state; the best epoch's weights with `restore_best`) and MetricsLogger
(metrics.csv, curves.png). Early stopping, the plateau schedule and the best checkpoint
decide "improved" by one rule: `Monitor`.

A user callback (`Model.train(callbacks=[...])`) runs after the built-in ones that act on the
model and before the checkpoint is written, so what it changes is saved.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Literal

from ..errors import SpecError
from ..files import atomic_path, write_text_atomic
from ..options import choice
from . import options


class Callback:
    """The base of every callback; each hook does nothing unless overridden.

    `trainer` is the running fit loop (training/fit.py: Trainer): it offers `request_stop()`
    (stop after this step, saving a checkpoint, as Ctrl-C does), `stop_training` (set it to
    end training after this epoch), `module`, `optimizer`, `history`, `epochs`, `steps` and
    `say(text)`. Epochs and steps count from 1."""

    def on_train_begin(self, trainer) -> None:
        """Before the run's files are written and its first step is taken (a resumed run's
        state is restored by then); raising here leaves the run folder as it was."""

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        """Before the epoch's first step."""

    def on_batch_end(self, trainer, epoch: int, step: int) -> None:
        """After each optimizer step."""

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """After the epoch, with its logs: loss, metrics, val_*, lr."""

    def on_train_end(self, trainer, status: str) -> None:
        """When training ends: completed, interrupted or diverged."""

    def state_dict(self) -> dict:
        """What the callback needs to continue a resumed run (saved in the checkpoint)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned."""


# --- the one monitor rule ---------------------------------------------------------------

def monitor_mode(name: str, mode: str = "auto") -> str:
    """auto: higher is better for accuracies, precision, recall, F1 and IoU; lower for everything else."""
    if mode != "auto":
        return mode
    return "max" if any(word in name.lower() for word in ("acc", "precision", "recall", "f1", "iou")) else "min"


class Monitor:
    """Has a logged value improved? A finite value that beats the best so far by more than
    `min_delta` (lower in mode min, higher in mode max)."""

    def __init__(self, name: str, mode: str = "auto", min_delta: float = 0.0, user: str = "a callback"):
        self.name, self.mode, self.min_delta, self.user = name, monitor_mode(name, mode), min_delta, user
        self.best: float | None = None
        self.best_epoch: int | None = None

    def require(self, has_validation: bool) -> None:
        """Refuse before training a validation value when there is no validation data."""
        if self.name.startswith("val_") and not has_validation:
            raise SpecError.at(None, f"{self.user} monitors `{self.name}` but there is no validation data",
                               "set validation_split=0.2 or validation_data=FILE in the train section")

    def update(self, logs: dict, epoch: int) -> bool:
        """True (and the best is recorded) when this epoch's value improved on the best."""
        value = logs.get(self.name)
        if value is None:
            logged = ", ".join(k for k in logs if k not in ("epoch", "time_s", "lr"))
            raise SpecError.at(None, f"{self.user} monitors `{self.name}`, which is not logged",
                               f"choose one of: {logged}")
        improved = math.isfinite(value) and (self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta))
        if improved:
            self.best, self.best_epoch = value, epoch
        return improved

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


# --- early stopping --------------------------------------------------------------------

class EarlyStopping(Callback):
    """Ends training when the monitored value has not improved for `patience` epochs."""

    def __init__(self, monitor: Monitor, patience: int):
        self.monitor, self.patience = monitor, patience
        self.wait = 0

    def on_train_begin(self, trainer) -> None:
        self.monitor.require(trainer.has_validation)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        self.wait = 0 if self.monitor.update(logs, epoch) else self.wait + 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            trainer.say(f"early stopping: `{self.monitor.name}` has not improved for {self.patience} epoch(s); "
                        f"best epoch {self.monitor.best_epoch}")

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state["monitor"])
        self.wait = state["wait"]


class EarlyStoppingOptions(choice(
        "early_stopping", ("patience",), monitor=(str, "val_loss"), min_delta=(options.NonNegative, 0.0),
        patience=(options.NonNegativeInt, 5), restore_best=(bool, True),
        mode=(Literal["auto", "min", "max"], "auto"))):
    """`early_stopping=early_stopping(patience, monitor, min_delta, restore_best, mode)`."""

    def monitor_for(self, user: str) -> Monitor:
        return Monitor(self.monitor, self.mode, self.min_delta, user)

    def callback(self) -> EarlyStopping:
        return EarlyStopping(self.monitor_for("early stopping"), self.patience)


# --- learning-rate schedules -------------------------------------------------------------

class LRScheduler(Callback):
    """Steps a torch.optim.lr_scheduler scheduler after every step, or after every epoch."""

    def __init__(self, scheduler, per_step: bool):
        self.scheduler, self.per_step = scheduler, per_step

    def on_batch_end(self, trainer, epoch: int, step: int) -> None:
        if self.per_step:
            self.scheduler.step()

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if not self.per_step:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` (not below `min_lr`) when the monitored value
    has not improved for more than `patience` epochs."""

    def __init__(self, monitor: Monitor, factor: float, patience: int, min_lr: float):
        self.monitor, self.factor, self.patience, self.min_lr = monitor, factor, patience, min_lr
        self.wait = 0

    def on_train_begin(self, trainer) -> None:
        self.monitor.require(trainer.has_validation)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        self.wait = 0 if self.monitor.update(logs, epoch) else self.wait + 1
        if self.wait > self.patience:
            for group in trainer.optimizer.param_groups:
                group["lr"] = max(self.min_lr, group["lr"] * self.factor)
            self.wait = 0

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.monitor.load_state_dict(state["monitor"])
        self.wait = state["wait"]


# --- checkpoints and logs ------------------------------------------------------------------

class Checkpoint(Callback):
    """Saves the resume state after every epoch. With a monitor (restore_best), it also keeps
    the best epoch's weights, which become the run's weights when training completes."""

    def __init__(self, monitor: Monitor | None = None):
        self.monitor = monitor
        self.best_state: dict | None = None
        self.best_logs: dict | None = None

    def on_train_begin(self, trainer) -> None:
        if self.monitor is not None:
            self.monitor.require(trainer.has_validation)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if self.monitor is not None and self.monitor.update(logs, epoch):
            self.best_state = {k: v.detach().clone() for k, v in trainer.module.state_dict().items()}
            self.best_logs = logs
        trainer.save_checkpoint(epoch, 0)

    def on_train_end(self, trainer, status: str) -> None:
        if status == "completed" and self.best_state is not None:
            trainer.keep(self.monitor.best_epoch, self.best_logs, self.best_state)

    def state_dict(self) -> dict:
        best = self.best_state and {k: v.cpu() for k, v in self.best_state.items()}
        return {"monitor": self.monitor and self.monitor.state_dict(), "best_state": best,
                "best_logs": self.best_logs}

    def load_state_dict(self, state: dict) -> None:
        if self.monitor is not None and state["monitor"] is not None:
            self.monitor.load_state_dict(state["monitor"])
        self.best_state, self.best_logs = state["best_state"], state["best_logs"]


class MetricsLogger(Callback):
    """metrics.csv (one row per epoch) after every epoch; curves.png too when training ends.
    `output` is where the run is written (training/output.py: RunOutput)."""

    def __init__(self, output, title: str):
        self.output, self.title = output, title

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        write_metrics_csv(self.output.folder.metrics_file, trainer.history)

    def on_train_end(self, trainer, status: str) -> None:
        if trainer.history:
            write_curves(self.output.folder.curves_file, trainer.history, self.title)


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, out.getvalue())


def write_curves(path: Path, history: list[dict[str, Any]], title: str) -> None:
    """Loss (and metrics) per epoch, training solid and validation dashed."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    names = [k for k in history[0] if k not in ("epoch", "lr", "time_s") and not k.startswith("val_")]
    metric_names = [n for n in names if n != "loss"]
    panels = 1 + (1 if metric_names else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    for ax, keys in zip(axes[0], (["loss"], metric_names)):
        for key in keys:
            for prefix, style in (("", "-"), ("val_", "--")):
                values = [row.get(prefix + key) for row in history]
                if any(isinstance(v, float) and math.isfinite(v) for v in values):
                    ax.plot(epochs, [v if isinstance(v, float) else float("nan") for v in values], style,
                            marker="o", markersize=3, label=prefix + key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0][0].set_title(f"{title}: loss")
    if metric_names:
        axes[0][1].set_title("metrics")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=100)
    plt.close(fig)

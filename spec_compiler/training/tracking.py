"""Experiment tracking as callbacks (callbacks.py): TensorBoard event files in every run folder,
MLflow when asked (`--log mlflow`), and the labels a run carries into run.json (its `--set`
overrides, a search trial's values).

Event files are appended to as training goes (that is how TensorBoard reads them live), so
they are the one thing in a run folder not written whole through files.py.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from ..errors import UsageError
from .callbacks import Callback

TENSORBOARD_FOLDER = "tensorboard"
STEP_EVERY = 10  # steps between the per-step scalars


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def _hparams(trainer) -> dict[str, Any]:
    """The run's hyperparameters as scalars: the train section's, then overrides and trial values."""
    config = trainer.config
    values: dict[str, Any] = {"lr": config.lr, "batch": config.batch, "epochs": config.epochs,
                              "weight_decay": config.weight_decay, "seed": config.seed,
                              "optimizer": type(config.optimizer).__name__.lower(),
                              "loss": type(config.loss).__name__.lower()}
    record = trainer.first_record
    values.update({f"set.{k}": v for k, v in record.overrides.items()})
    values.update({f"trial.{k}": v for k, v in (record.trial.params if record.trial else {}).items()})
    return values


def _final_scalars(trainer) -> dict[str, float]:
    logs = trainer.history[-1] if trainer.history else {}
    return {k: v for k, v in logs.items() if isinstance(v, float) and math.isfinite(v) and k not in ("time_s", "lr")}


class TensorBoardLogger(Callback):
    """Loss and metrics per epoch (`epoch/…`) and every STEP_EVERY steps (`step/…`), the
    learning rate, and the hyperparameters with the final values (TensorBoard's HPARAMS tab),
    under RUN/tensorboard."""

    def __init__(self, every: int = STEP_EVERY):
        self.every = every
        self.writer = None

    def _writer(self, trainer):
        """Opened at the first value, once the run's files are written (in staging until the run
        is in place, so the folder is looked up then)."""
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(trainer.output.folder.path / TENSORBOARD_FOLDER))
        return self.writer

    def on_batch_end(self, trainer, epoch: int, step: int) -> None:
        if step % self.every == 0:
            global_step = (epoch - 1) * trainer.steps + step
            for key, value in trainer.running_logs().items():
                if isinstance(value, float):
                    self._writer(trainer).add_scalar(f"step/{key}", value, global_step)
            self._writer(trainer).add_scalar("step/lr", trainer.optimizer.param_groups[0]["lr"], global_step)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            if isinstance(value, (int, float)) and key not in ("epoch",) and math.isfinite(value):
                self._writer(trainer).add_scalar(f"epoch/{key}", value, epoch)
        self._writer(trainer).flush()

    def on_train_end(self, trainer, status: str) -> None:
        if trainer.history:
            scalars = {f"hparam/{k}": v for k, v in _final_scalars(trainer).items()}
            self._writer(trainer).add_hparams(_hparams(trainer), scalars, run_name=".")
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class MlflowLogger(Callback):
    """One MLflow run per training run (the tracking URI from MLFLOW_TRACKING_URI, as MLflow
    reads it): parameters, metrics per epoch, run.json and metrics.csv as artifacts."""

    def __init__(self, experiment: str):
        try:
            import mlflow
        except ImportError:
            raise UsageError("--log mlflow needs MLflow: pip install mlflow") from None
        self.mlflow, self.experiment = mlflow, experiment
        self.active = False

    def on_train_begin(self, trainer) -> None:
        self.mlflow.set_experiment(self.experiment)
        self.mlflow.start_run(run_name=trainer.output.run_dir.name)
        self.active = True

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if epoch == 1:
            self.mlflow.log_params({k: str(v) for k, v in _hparams(trainer).items()})
        values = {k.replace("@", "_"): v for k, v in logs.items()
                  if isinstance(v, (int, float)) and k != "epoch" and math.isfinite(v)}
        self.mlflow.log_metrics(values, step=epoch)

    def on_train_end(self, trainer, status: str) -> None:
        if not self.active:
            return
        self.mlflow.set_tag("specc.status", status)
        self.mlflow.set_tag("specc.run_dir", str(trainer.output.run_dir))
        self.mlflow.end_run("FINISHED" if status == "completed" else "KILLED")
        self.active = False


class RunLabels(Callback):
    """Writes run.json fields that name the experiment (`overrides`, `trial`) from the start."""

    def __init__(self, **fields):
        self.fields = fields

    def on_train_begin(self, trainer) -> None:
        record = trainer.first_record
        trainer.first_record = type(record).model_validate({**record.model_dump(), **self.fields})

"""`specc tune`: Optuna over a spec's search values. TPE sampling, median pruning on the
validation metric after each epoch, the study in DIR/study.db (SQLite) so that a stopped
search resumes: `--trials N` is the total wanted, finished trials are not repeated, and a
trial cut short is run again. Every trial is a normal run folder, DIR/trial_NNN; the best
is named in DIR/best.json."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..files import write_text_atomic
from ..inference import Limits
from ..model import compile_source
from ..run import RunFolder
from ..training.callbacks import Callback, monitor_mode
from ..training.tracking import RunLabels
from .overrides import Variant
from .space import SearchValue, default_point, number_text

STUDY_FILE = "study.db"
STUDY_NAME = "specc"
BEST_FILE = "best.json"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UsageError("`specc tune` needs Optuna: pip install 'specc[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def suggest(trial, space: dict[str, SearchValue]) -> dict[str, str]:
    """The trial's point: the text of each search value."""
    point = {}
    for name, value in space.items():
        if value.kind == "choice":
            point[name] = trial.suggest_categorical(name, list(value.choices))
        elif value.integer:
            point[name] = number_text(trial.suggest_int(name, int(value.low), int(value.high),
                                                        log=value.kind == "log_range"))
        else:
            point[name] = number_text(trial.suggest_float(name, value.low, value.high, log=value.kind == "log_range"))
    return point


class Pruning(Callback):
    """Reports the monitored value to the trial after each epoch; ends the run when the
    median rule prunes it (the run folder stays, marked `pruned` in run.json)."""

    def __init__(self, trial, monitor: str):
        self.trial, self.monitor = trial, monitor
        self.pruned = False

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        value = logs.get(self.monitor)
        if value is None:
            raise UsageError(f"--metric `{self.monitor}` is not logged; logged: "
                             + ", ".join(k for k in logs if k not in ("epoch", "time_s", "lr")))
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = trainer.stop_training = True

    def on_train_end(self, trainer, status: str) -> None:
        trial = trainer.first_record.trial
        if self.pruned and trial is not None:
            trainer.first_record = trainer.first_record.model_copy(
                update={"trial": trial.model_copy(update={"pruned": True})})


@dataclass(frozen=True)
class TuneResult:
    best_value: float | None
    best_params: dict[str, str]
    best_run: str | None
    metric: str
    trials_run: int
    trials_pruned: int

    def to_json(self) -> dict:
        return {"best_value": self.best_value, "best_params": self.best_params, "best_run": self.best_run,
                "metric": self.metric, "trials_run": self.trials_run, "trials_pruned": self.trials_pruned}


def tune(variant: Variant, trials: int, out: Path, timeout: float | None = None, jobs: int = 1,
         metric: str = "val_loss", plugins=(), limits: Limits = Limits(), train_options: dict | None = None,
         callbacks=lambda: ()) -> TuneResult:
    """Run the search until the study holds `trials` finished trials (or `timeout` seconds pass)."""
    if not variant.space:
        raise UsageError(f"{variant.path} has no search values: write choice(...), range(...) or "
                         "log_range(...) where a value goes (see docs/experiments.md)")
    optuna = _optuna()
    out.mkdir(parents=True, exist_ok=True)
    direction = "maximize" if monitor_mode(metric) == "max" else "minimize"
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{(out / STUDY_FILE).resolve()}",
                                load_if_exists=True, direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1))
    _requeue_unfinished(study, optuna)
    if not study.trials:
        study.enqueue_trial(_native(default_point(variant.space), variant.space))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = trials - len([t for t in study.trials if t.state in finished])

    def objective(trial) -> float:
        point = suggest(trial, variant.space)
        model = compile_source(variant.at(point), variant.path, plugins, limits)
        pruning = Pruning(trial, metric)
        labels = RunLabels(overrides=variant.overrides,
                           trial={"study": str(out), "number": trial.number, "params": point})
        result = model.train(**(train_options or {}), out=str(out / f"trial_{trial.number:03d}"), progress=False,
                             callbacks=[labels, pruning, *callbacks()])
        values = [row[metric] for row in result.history if isinstance(row.get(metric), float)
                  and math.isfinite(row[metric])]
        if pruning.pruned:
            raise optuna.TrialPruned()
        if not values:
            raise UsageError(f"trial {trial.number}: `{metric}` was never logged with a finite value")
        return max(values) if direction == "maximize" else min(values)

    if remaining > 0:
        study.optimize(objective, n_trials=remaining, timeout=timeout, n_jobs=jobs, catch=())
    return _summary(study, optuna, out, metric)


def _native(point: dict[str, str], space: dict[str, SearchValue]) -> dict:
    """A point as Optuna stores it (numbers for ranges, the text for choices)."""
    return {name: (text if space[name].kind == "choice" else
                   int(text) if space[name].integer else float(text)) for name, text in point.items()}


def _requeue_unfinished(study, optuna) -> None:
    """Trials left running by a stopped search are marked failed and queued again."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(trial.params)


def _summary(study, optuna, out: Path, metric: str) -> TuneResult:
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    best_run = str(out / f"trial_{best.number:03d}") if best else None
    params = {}
    if best is not None:
        params = RunFolder(best_run).read_record().trial.params
    result = TuneResult(best.value if best else None, params, best_run, metric,
                        sum(s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for s in states),
                        states.count(optuna.trial.TrialState.PRUNED))
    write_text_atomic(out / BEST_FILE, json.dumps(result.to_json(), indent=2) + "\n")
    return result

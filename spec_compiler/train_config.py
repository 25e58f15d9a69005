"""The `train { ... }` section: its schema, checked at compile time, and the defaults the
trainer uses where the section says nothing.

Every key is optional; command-line options override the file. `specc compile` only
validates it, so mistakes surface before training. Each option family is declared once,
its schema beside its implementation, in spec_compiler/training/options/ (early stopping
in training/callbacks.py); this module gathers them into TrainConfig.

Defaults: the task from the output and the data (training/tasks.py), and from the task the
loss (for classification and regression from the final activation and the labels,
training/options/losses.py: default_loss) and the metrics; adam (each optimizer has its default learning rate: sgd 1e-2, the others
1e-3); a constant learning rate; batch 32; 10 epochs; seed 0; validation_split 0.2 when
there is no validation file; metrics [accuracy] for classifiers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .options import choice_type
from .training.callbacks import EarlyStoppingOptions
from .training.options import Fraction, NonNegative, Positive, PositiveInt
from .training.options.augmentations import AUGMENTATIONS
from .training.options.losses import LOSS_ALIASES, LOSSES
from .training.options.metrics import METRIC_ALIASES, METRICS
from .training.options.normalizations import NORMALIZATIONS
from .training.options.optimizers import DEFAULT_OPTIMIZER, OPTIMIZERS
from .training.options.schedules import SCHEDULE_ALIASES, SCHEDULES, Constant
from .training.tasks import TASK_ALIASES, TASKS

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
DEFAULT_SEED = 0
DEFAULT_VALIDATION_SPLIT = 0.2

EARLY_STOPPING = EarlyStoppingOptions
# Keys written per output of a graph spec, `loss.digit=...`: the field each gathers into.
PER_OUTPUT_KEYS = {"loss": "output_losses", "loss_weight": "loss_weights", "metrics": "output_metrics"}

Loss = choice_type("loss", LOSSES, LOSS_ALIASES)
Optimizer = choice_type("optimizer", OPTIMIZERS)
Schedule = choice_type("schedule", SCHEDULES, SCHEDULE_ALIASES)
Metric = choice_type("metric", METRICS, METRIC_ALIASES)
Augmentation = choice_type("augmentation", AUGMENTATIONS)
Normalization = choice_type("normalization", NORMALIZATIONS)
EarlyStopping = choice_type("early stopping", {"early_stopping": EARLY_STOPPING})
Task = choice_type("task", TASKS, TASK_ALIASES)


class TrainConfig(BaseModel):
    """Keys of `train { }`. None means: the trainer picks a documented default."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    task: Task | None = None
    loss: Loss | None = None
    optimizer: Optimizer | None = None
    lr: Positive | None = None
    schedule: Schedule | None = None
    weight_decay: NonNegative = 0.0
    clip_norm: Positive | None = None
    clip_value: Positive | None = None
    batch: PositiveInt | None = None
    epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = None  # end the run after this many optimizer steps
    steps_per_epoch: PositiveInt | None = None  # an epoch is this many steps (the data stream on across epochs)
    validation_split: Fraction | None = None
    early_stopping: EarlyStopping | None = None
    metrics: list[Metric] | None = None
    seed: Annotated[int, Field(ge=0)] | None = None
    augment: list[Augmentation] = Field(default_factory=list)
    labels: list[str] | None = None
    normalize: Normalization | None = None
    data: str | None = None
    validation_data: str | None = None
    # A model with several outputs trains each with its own loss, weight and metrics, written
    # per output in the section (`loss.digit=sparse_categorical_crossentropy`,
    # `loss_weight.parity=0.5`, `metrics.digit=[accuracy, top_k_accuracy(k=3)]`);
    # training/multitask.py.
    output_losses: dict[str, Loss] | None = None
    loss_weights: dict[str, NonNegative] | None = None
    output_metrics: dict[str, list[Metric]] | None = None  # `metrics.mask=[mean_iou, pixel_accuracy]`

    @model_validator(mode="before")
    @classmethod
    def _per_output_keys(cls, data):
        """`loss.NAME=`, `loss_weight.NAME=` and `metrics.NAME=` gathered into output_losses,
        loss_weights and output_metrics."""
        if not isinstance(data, dict) or not any(isinstance(key, str) and "." in key for key in data):
            return data
        data = dict(data)
        for key in [k for k in data if isinstance(k, str) and "." in k]:
            prefix, _, output = key.partition(".")
            if prefix in PER_OUTPUT_KEYS:
                field = PER_OUTPUT_KEYS[prefix]
                data[field] = {**(data.get(field) or {}), output: data.pop(key)}
        return data

    @model_validator(mode="before")
    @classmethod
    def _early_stopping_word(cls, data):
        """`early_stopping=true` or `early_stopping=5` are shorthands for defaults / patience."""
        if isinstance(data, dict):
            value = data.get("early_stopping")
            if value is True or value == "true":
                data = {**data, "early_stopping": {"kind": "early_stopping", "args": []}}
            elif isinstance(value, int) and not isinstance(value, bool):
                data = {**data, "early_stopping": {"kind": "early_stopping", "args": [value]}}
            elif value is False or value == "false":
                data = {**data, "early_stopping": None}
        return data

    @model_validator(mode="after")
    def _labels_unique(self):
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        return self

    def with_defaults(self) -> TrainConfig:
        """Every key training needs before it sees the data, its default filled in. An explicit
        `lr` beats the one written inside `optimizer=...(lr=)`."""
        optimizer = self.optimizer or DEFAULT_OPTIMIZER()
        split = self.validation_split if self.validation_split is not None else DEFAULT_VALIDATION_SPLIT
        return self.model_copy(update={
            "optimizer": optimizer, "lr": self.lr or optimizer.lr or optimizer.default_lr,
            "schedule": self.schedule or Constant(), "batch": self.batch or DEFAULT_BATCH,
            "epochs": self.epochs or DEFAULT_EPOCHS, "seed": self.seed if self.seed is not None else DEFAULT_SEED,
            "validation_split": 0.0 if self.validation_data else split})

    def with_task(self, task, default_loss, default_metrics: list) -> TrainConfig:
        """The task (inferred or the section's), the loss (`default_loss` unless the section
        names one) and the metrics (the section's, else the task's defaults)."""
        metrics = self.metrics if self.metrics is not None else default_metrics
        return self.model_copy(update={"task": task, "loss": self.loss or default_loss, "metrics": metrics})

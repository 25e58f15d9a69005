"""The `train { ... }` section: its schema, checked at compile time.

Every key is optional; command-line options override the file. The trainer reads
this model; `specc compile` only validates it, so mistakes surface before training.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .options import choice, choice_type

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]

LOSSES = {
    "binary_crossentropy": choice("binary_crossentropy", ("label_smoothing",), label_smoothing=(Probability, 0.0)),
    "categorical_crossentropy": choice("categorical_crossentropy", ("label_smoothing",), label_smoothing=(Probability, 0.0)),
    "sparse_categorical_crossentropy": choice("sparse_categorical_crossentropy", ("label_smoothing",),
                                              label_smoothing=(Probability, 0.0)),
    "mse": choice("mse"),
    "mae": choice("mae"),
    "huber": choice("huber", ("delta",), delta=(Pos, 1.0)),
}
LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "bce": "binary_crossentropy",
                "cce": "categorical_crossentropy", "sparse_cce": "sparse_categorical_crossentropy"}

OPTIMIZERS = {
    "sgd": choice("sgd", ("lr",), lr=(Pos | None, None), momentum=(NonNeg, 0.0), nesterov=(bool, False)),
    "adam": choice("adam", ("lr",), lr=(Pos | None, None), betas=(tuple[Probability, Probability], (0.9, 0.999)),
                   eps=(Pos, 1e-7), amsgrad=(bool, False)),
    "adamw": choice("adamw", ("lr",), lr=(Pos | None, None), betas=(tuple[Probability, Probability], (0.9, 0.999)),
                    eps=(Pos, 1e-7), amsgrad=(bool, False)),
    "rmsprop": choice("rmsprop", ("lr",), lr=(Pos | None, None), rho=(Probability, 0.9), momentum=(NonNeg, 0.0),
                      eps=(Pos, 1e-7), centered=(bool, False)),
}

SCHEDULES = {
    "constant": choice("constant"),
    "step": choice("step", ("every", "gamma"), every=(Annotated[int, Field(gt=0)], 10), gamma=(Pos, 0.1)),
    "cosine": choice("cosine", ("min_lr",), min_lr=(NonNeg, 0.0), warmup=(Annotated[int, Field(ge=0)], 0)),
    "plateau": choice("plateau", ("factor", "patience"), factor=(Annotated[float, Field(gt=0, lt=1)], 0.1),
                      patience=(Annotated[int, Field(ge=0)], 5), min_lr=(NonNeg, 0.0),
                      monitor=(str, "val_loss"), min_delta=(NonNeg, 1e-4)),
}
SCHEDULE_ALIASES = {"reduce_on_plateau": "plateau", "cosine_decay": "cosine", "step_decay": "step"}

METRICS = {
    "accuracy": choice("accuracy"),
    "binary_accuracy": choice("binary_accuracy", ("threshold",), threshold=(Probability, 0.5)),
    "categorical_accuracy": choice("categorical_accuracy"),
    "sparse_categorical_accuracy": choice("sparse_categorical_accuracy"),
    "top_k_accuracy": choice("top_k_accuracy", ("k",), k=(Annotated[int, Field(gt=0)], 5)),
    "mae": choice("mae"),
    "mse": choice("mse"),
    "precision": choice("precision", ("threshold",), threshold=(Probability, 0.5)),
    "recall": choice("recall", ("threshold",), threshold=(Probability, 0.5)),
}
METRIC_ALIASES = {"acc": "accuracy", "top5": "top_k_accuracy"}

AUGMENTATIONS = {
    "flip": choice("flip", ("mode",), mode=(Literal["horizontal", "vertical", "both"], "horizontal")),
    "rotate": choice("rotate", ("degrees",), degrees=(Annotated[float, Field(gt=0, le=180)], 15.0)),
    "translate": choice("translate", ("fraction",), fraction=(Annotated[float, Field(gt=0, lt=1)], 0.1)),
    "noise": choice("noise", ("std",), std=(Pos, 0.05)),
}

NORMALIZATIONS = {
    "none": choice("none"),
    "standard": choice("standard"),  # per-feature (per-channel for images) mean and std of the training data
    "minmax": choice("minmax"),
    "scale": choice("scale", ("factor",), factor=(Pos, 1 / 255)),
}

EARLY_STOPPING = choice(
    "early_stopping", ("patience",), monitor=(str, "val_loss"), min_delta=(NonNeg, 0.0),
    patience=(Annotated[int, Field(ge=0)], 5), restore_best=(bool, True), mode=(Literal["auto", "min", "max"], "auto"),
)

Loss = choice_type("loss", LOSSES, LOSS_ALIASES)
Optimizer = choice_type("optimizer", OPTIMIZERS)
Schedule = choice_type("schedule", SCHEDULES, SCHEDULE_ALIASES)
Metric = choice_type("metric", METRICS, METRIC_ALIASES)
Augmentation = choice_type("augmentation", AUGMENTATIONS)
Normalization = choice_type("normalization", NORMALIZATIONS)
EarlyStopping = choice_type("early stopping", {"early_stopping": EARLY_STOPPING})


class TrainConfig(BaseModel):
    """Keys of `train { }`. None means: the trainer picks a documented default."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    loss: Loss | None = None
    optimizer: Optimizer | None = None
    lr: Pos | None = None
    schedule: Schedule | None = None
    weight_decay: NonNeg = 0.0
    clip_norm: Pos | None = None
    clip_value: Pos | None = None
    batch: Annotated[int, Field(gt=0)] | None = None
    epochs: Annotated[int, Field(gt=0)] | None = None
    validation_split: Fraction | None = None
    early_stopping: EarlyStopping | None = None
    metrics: list[Metric] | None = None
    seed: Annotated[int, Field(ge=0)] | None = None
    augment: list[Augmentation] = Field(default_factory=list)
    labels: list[str] | None = None
    normalize: Normalization | None = None
    data: str | None = None
    validation_data: str | None = None

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

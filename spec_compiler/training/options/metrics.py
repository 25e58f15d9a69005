"""Metrics, with Keras' meanings: each kind's schema and, beside it, what it measures.

A measure accumulates sufficient statistics over an epoch (sums and counts, kept on the
device: no synchronization per batch) and turns them into a value at the end.
``accuracy`` becomes binary or categorical accuracy from the loss and the labels, as Keras does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from ...errors import SpecError
from ...options import choice
from . import PositiveInt, Probability, by_kind
from .losses import targets_like


@dataclass(frozen=True)
class Task:
    """What a metric needs to know about the training task."""

    loss: str  # the loss kind
    class_ids: bool  # the labels are class ids (not one-hot rows or real values)
    units: int | None  # the output's last size


# --- what is measured ---------------------------------------------------------------

class Measure(ABC):
    """One logged metric: `size` statistics per batch, summed over an epoch; `value` reads the sums."""

    size = 2
    needs_probabilities = True  # False: it reads only the argmax/top-k, the same on logits

    def __init__(self, name: str):
        self.name = name

    @abstractmethod
    def stats(self, out, y) -> list:
        """`size` values (tensors or numbers) for one batch of outputs and labels."""

    def value(self, sums) -> float:
        return float(sums[0] / sums[1]) if float(sums[1]) > 0 else float("nan")


def _class_ids(y):
    return y.argmax(dim=-1) if y.is_floating_point() else y


class ClassHits(Measure):
    """The share of samples whose highest output is the labelled class."""

    needs_probabilities = False

    def stats(self, out, y):
        pred = out.argmax(dim=-1)
        hits = pred == _class_ids(y).reshape(pred.shape)
        return [hits.sum(), hits.numel()]


class ThresholdHits(Measure):
    """The share of outputs on the same side of `threshold` as their label."""

    def __init__(self, name: str, threshold: float):
        super().__init__(name)
        self.threshold = threshold

    def stats(self, out, y):
        hits = (out >= self.threshold) == (targets_like(y, out) >= 0.5)
        return [hits.sum(), hits.numel()]


class TopKHits(Measure):
    """The share of samples whose labelled class is among the `k` highest outputs."""

    needs_probabilities = False

    def __init__(self, name: str, k: int):
        super().__init__(name)
        self.k = k

    def stats(self, out, y):
        top = out.topk(min(self.k, out.shape[-1]), dim=-1).indices
        hits = (top == _class_ids(y).reshape(*top.shape[:-1], 1)).any(dim=-1)
        return [hits.sum(), hits.numel()]


class MeanError(Measure):
    """The mean absolute or squared difference between outputs and labels."""

    def __init__(self, name: str, squared: bool):
        super().__init__(name)
        self.squared = squared

    def stats(self, out, y):
        import torch

        diff = out.float() - targets_like(y, out).float()
        error = diff * diff if self.squared else diff.abs()
        return [error.sum(dtype=torch.float64), error.numel()]


class PositiveRate(Measure):
    """Keras' Precision/Recall: every output element thresholded (one-hot targets for classes)."""

    def __init__(self, name: str, threshold: float, of: Literal["predicted", "actual"]):
        super().__init__(name)
        self.threshold, self.of = threshold, of

    def stats(self, out, y):
        predicted, actual = out >= self.threshold, targets_like(y, out) >= 0.5
        true_positives = (predicted & actual).sum()
        return [true_positives, (predicted if self.of == "predicted" else actual).sum()]


# --- the schemas --------------------------------------------------------------------

class Accuracy(choice("accuracy")):
    """Binary accuracy for a binary loss or one output unit, else categorical accuracy."""

    def measure(self, task: Task) -> Measure:
        if task.loss == "binary_crossentropy" or task.units == 1:
            return ThresholdHits("accuracy", 0.5)
        return ClassHits("accuracy")


class BinaryAccuracy(choice("binary_accuracy", ("threshold",), threshold=(Probability, 0.5))):
    def measure(self, task: Task) -> Measure:
        return ThresholdHits(self.kind, self.threshold)


class CategoricalAccuracy(choice("categorical_accuracy")):
    def measure(self, task: Task) -> Measure:
        return ClassHits(self.kind)


class SparseCategoricalAccuracy(choice("sparse_categorical_accuracy")):
    def measure(self, task: Task) -> Measure:
        if not task.class_ids:
            raise SpecError.at(None, "sparse_categorical_accuracy needs class ids as labels; these are one-hot "
                                     "or real-valued", "use categorical_accuracy")
        return ClassHits(self.kind)


class TopKAccuracy(choice("top_k_accuracy", ("k",), k=(PositiveInt, 5))):
    def measure(self, task: Task) -> Measure:
        return TopKHits(self.kind, self.k)


class MeanAbsoluteError(choice("mae")):
    def measure(self, task: Task) -> Measure:
        return MeanError(self.kind, squared=False)


class MeanSquaredError(choice("mse")):
    def measure(self, task: Task) -> Measure:
        return MeanError(self.kind, squared=True)


class Precision(choice("precision", ("threshold",), threshold=(Probability, 0.5))):
    def measure(self, task: Task) -> Measure:
        return PositiveRate(self.kind, self.threshold, of="predicted")


class Recall(choice("recall", ("threshold",), threshold=(Probability, 0.5))):
    def measure(self, task: Task) -> Measure:
        return PositiveRate(self.kind, self.threshold, of="actual")


METRICS = by_kind(Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKAccuracy,
                  MeanAbsoluteError, MeanSquaredError, Precision, Recall)
METRIC_ALIASES = {"acc": "accuracy", "top5": "top_k_accuracy"}


def measures(metrics: list, task: Task) -> list[Measure]:
    """What the train section's `metrics=[...]` measure; each name logged once."""
    built = [metric.measure(task) for metric in metrics]
    names = [m.name for m in built]
    for name in names:
        if names.count(name) > 1:
            raise SpecError.at(None, f"metric `{name}` is listed twice")
    return built

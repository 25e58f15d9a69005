"""Metrics, with Keras' meanings: each kind's schema and, beside it, what it measures.

A measure accumulates sufficient statistics over an epoch (sums and counts, kept on the
device: no synchronization per batch) and turns them into a value at the end.
``accuracy`` becomes binary or categorical accuracy from the loss and the labels, as Keras does.

Measures see the classes on the last axis: a segmentation's KxHxW outputs are read with the
class axis moved last (ClassesLast), so every pixel counts as one sample. A label equal to
the task's padding id counts nowhere.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

from ...errors import SpecError
from ...options import choice
from . import PositiveInt, Probability, by_kind
from .losses import EPS, targets_like


@dataclass(frozen=True)
class Task:
    """What a metric needs to know about the training task."""

    loss: str  # the loss kind
    class_ids: bool  # the labels are class ids (not one-hot rows or real values)
    units: int | None  # the number of classes (the output's last size, or a segmentation's K)
    class_dim: int = -1  # the dim of the outputs holding the classes, counted from the end
    ignore: int | None = None  # a label id that counts nowhere (padding)


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


def _kept(labels, ignore: int | None):
    """Which labels count: all, or those other than the padding id."""
    return None if ignore is None else labels != ignore


class ClassHits(Measure):
    """The share of samples whose highest output is the labelled class."""

    needs_probabilities = False

    def __init__(self, name: str, ignore: int | None = None):
        super().__init__(name)
        self.ignore = ignore

    def stats(self, out, y):
        pred = out.argmax(dim=-1)
        labels = _class_ids(y).reshape(pred.shape)
        hits = pred == labels
        keep = _kept(labels, self.ignore)
        if keep is None:
            return [hits.sum(), hits.numel()]
        return [(hits & keep).sum(), keep.sum()]


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

    def __init__(self, name: str, k: int, ignore: int | None = None):
        super().__init__(name)
        self.k, self.ignore = k, ignore

    def stats(self, out, y):
        top = out.topk(min(self.k, out.shape[-1]), dim=-1).indices
        labels = _class_ids(y).reshape(top.shape[:-1])
        hits = (top == labels.unsqueeze(-1)).any(dim=-1)
        keep = _kept(labels, self.ignore)
        if keep is None:
            return [hits.sum(), hits.numel()]
        return [(hits & keep).sum(), keep.sum()]


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


class ClassOverlap(Measure):
    """Mean intersection over union of the predicted (argmax) and labelled classes, over the
    classes that occur in the labels or the predictions: 2 sums per class."""

    needs_probabilities = False

    def __init__(self, name: str, classes: int, ignore: int | None = None):
        super().__init__(name)
        self.classes, self.ignore, self.size = classes, ignore, 2 * classes

    def stats(self, out, y):
        import torch

        pred, labels = out.argmax(dim=-1).reshape(-1), _class_ids(y).reshape(-1)
        keep = _kept(labels, self.ignore)
        if keep is not None:
            pred, labels = pred[keep], labels[keep]
        k = self.classes
        overlap = torch.bincount(labels[pred == labels], minlength=k)[:k]
        union = torch.bincount(pred, minlength=k)[:k] + torch.bincount(labels, minlength=k)[:k] - overlap
        return [*overlap.unbind(), *union.unbind()]

    def value(self, sums) -> float:
        overlap, union = sums[:self.classes], sums[self.classes:]
        present = union > 0
        return float((overlap[present] / union[present]).mean()) if bool(present.any()) else float("nan")


class Perplexity(Measure):
    """exp of the mean negative log-probability of the labelled class (a language model's
    perplexity per token)."""

    def __init__(self, name: str, ignore: int | None = None):
        super().__init__(name)
        self.ignore = ignore

    def stats(self, out, y):
        import torch

        labels = _class_ids(y).reshape(out.shape[:-1])
        keep = _kept(labels, self.ignore)
        chosen = out.gather(-1, labels.clamp(0, out.shape[-1] - 1).unsqueeze(-1)).squeeze(-1)
        nll = -torch.log(chosen.double().clamp_min(EPS))
        if keep is None:
            return [nll.sum(), nll.numel()]
        return [(nll * keep).sum(), keep.sum()]

    def value(self, sums) -> float:
        return math.exp(float(sums[0] / sums[1])) if float(sums[1]) > 0 else float("nan")


class F1Score(Measure):
    """F1 of thresholded outputs against 0/1 labels: micro (true and false positives and
    negatives summed over every output) or macro (F1 per output unit, then their mean over
    the units that occur in the labels or the predictions)."""

    def __init__(self, name: str, threshold: float, classes: int | None = None):
        super().__init__(name)
        self.threshold, self.classes = threshold, classes
        self.size = 3 * classes if classes else 3

    def stats(self, out, y):
        predicted, actual = out >= self.threshold, targets_like(y, out) >= 0.5
        if not self.classes:
            return [(predicted & actual).sum(), (predicted & ~actual).sum(), (~predicted & actual).sum()]
        axes = tuple(range(out.ndim - 1))
        counts = ((predicted & actual).sum(axes), (predicted & ~actual).sum(axes), (~predicted & actual).sum(axes))
        return [value for count in counts for value in count.unbind()]

    def value(self, sums) -> float:
        if not self.classes:
            tp, fp, fn = (float(v) for v in sums)
            return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else float("nan")
        k = self.classes
        tp, fp, fn = sums[:k], sums[k:2 * k], sums[2 * k:]
        scored = 2 * tp + fp + fn
        present = scored > 0
        return float((2 * tp[present] / scored[present]).mean()) if bool(present.any()) else float("nan")


class ClassesLast(Measure):
    """A measure read with the outputs' class axis moved last: each position of a
    segmentation's KxHxW output counts as one sample."""

    def __init__(self, inner: Measure, class_dim: int):
        super().__init__(inner.name)
        self.inner, self.class_dim = inner, class_dim
        self.size, self.needs_probabilities = inner.size, inner.needs_probabilities

    def stats(self, out, y):
        return self.inner.stats(out.movedim(self.class_dim, -1), y)

    def value(self, sums) -> float:
        return self.inner.value(sums)


def _classes(task: Task, metric: str) -> int:
    if not task.units or task.units < 2:
        raise SpecError.at(None, f"{metric} needs an output of 2 or more classes")
    return task.units


# --- the schemas --------------------------------------------------------------------

class Accuracy(choice("accuracy")):
    """Binary accuracy for a binary loss or one output unit, else categorical accuracy."""

    def measure(self, task: Task) -> Measure:
        if task.loss == "binary_crossentropy" or task.units == 1:
            return ThresholdHits("accuracy", 0.5)
        return ClassHits("accuracy", task.ignore)


class BinaryAccuracy(choice("binary_accuracy", ("threshold",), threshold=(Probability, 0.5))):
    def measure(self, task: Task) -> Measure:
        return ThresholdHits(self.kind, self.threshold)


class CategoricalAccuracy(choice("categorical_accuracy")):
    def measure(self, task: Task) -> Measure:
        return ClassHits(self.kind, task.ignore)


class PixelAccuracy(choice("pixel_accuracy")):
    """A segmentation's share of pixels given their labelled class."""

    def measure(self, task: Task) -> Measure:
        return ClassHits(self.kind, task.ignore)


class MeanIou(choice("mean_iou")):
    """Intersection over union of each class's predicted and labelled pixels (or positions), averaged."""

    def measure(self, task: Task) -> Measure:
        return ClassOverlap(self.kind, _classes(task, self.kind), task.ignore)


class PerplexityMetric(choice("perplexity")):
    """A language model's perplexity: exp of the mean cross-entropy per token."""

    def measure(self, task: Task) -> Measure:
        return Perplexity(self.kind, task.ignore)


class F1(choice("f1", ("threshold",), threshold=(Probability, 0.5))):
    """Micro-averaged F1 of a multi-label (or binary) output."""

    def measure(self, task: Task) -> Measure:
        return F1Score(self.kind, self.threshold)


class MacroF1(choice("macro_f1", ("threshold",), threshold=(Probability, 0.5))):
    """F1 per output unit, averaged over the units."""

    def measure(self, task: Task) -> Measure:
        return F1Score(self.kind, self.threshold, _classes(task, self.kind))


class SparseCategoricalAccuracy(choice("sparse_categorical_accuracy")):
    def measure(self, task: Task) -> Measure:
        if not task.class_ids:
            raise SpecError.at(None, "sparse_categorical_accuracy needs class ids as labels; these are one-hot "
                                     "or real-valued", "use categorical_accuracy")
        return ClassHits(self.kind, task.ignore)


class TopKAccuracy(choice("top_k_accuracy", ("k",), k=(PositiveInt, 5))):
    def measure(self, task: Task) -> Measure:
        return TopKHits(self.kind, self.k, task.ignore)


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
                  MeanAbsoluteError, MeanSquaredError, Precision, Recall, PixelAccuracy, MeanIou, PerplexityMetric,
                  F1, MacroF1)
METRIC_ALIASES = {"acc": "accuracy", "top5": "top_k_accuracy"}


def measures(metrics: list, task: Task) -> list[Measure]:
    """What the train section's `metrics=[...]` measure; each name logged once."""
    built = [metric.measure(task) for metric in metrics]
    if task.class_dim != -1:
        built = [ClassesLast(measure, task.class_dim) for measure in built]
    names = [m.name for m in built]
    for name in names:
        if names.count(name) > 1:
            raise SpecError.at(None, f"metric `{name}` is listed twice")
    return built

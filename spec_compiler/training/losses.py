"""Losses and metrics, with Keras' meanings.

Fused losses: a model ending in softmax trained with (sparse) categorical
cross-entropy, or in sigmoid with binary cross-entropy, is trained on
``forward_logits`` with ``F.cross_entropy`` / ``F.binary_cross_entropy_with_logits``
(numerically stable). Any other softmax/sigmoid ending gives probabilities, and the
loss takes them as probabilities (Keras' ``from_logits=False``); a model without a
final softmax/sigmoid trained with a cross-entropy has its outputs taken as logits
(``from_logits=True``).

Metrics accumulate sufficient statistics over an epoch (sums and counts, kept on the
device: no synchronization per batch) and turn them into a value at the end.
``accuracy`` becomes binary, categorical or sparse categorical accuracy from the loss
and the labels, as Keras does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import SpecError

EPS = 1e-7
CROSS_ENTROPIES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy")


@dataclass(frozen=True)
class Head:
    """How the model's last values are read: fused (logits) or not, and the final activation."""

    final_activation: str | None
    fused: bool  # train on forward_logits

    def outputs(self, z: torch.Tensor) -> torch.Tensor:
        """The model's outputs (probabilities for softmax/sigmoid) from what the step computed."""
        if not self.fused:
            return z
        return torch.softmax(z, dim=-1) if self.final_activation == "softmax" else torch.sigmoid(z)


def fused_for(loss: str, final_activation: str | None) -> bool:
    return (final_activation == "softmax" and loss in ("sparse_categorical_crossentropy", "categorical_crossentropy")) \
        or (final_activation == "sigmoid" and loss == "binary_crossentropy")


def _class_last(z: torch.Tensor) -> torch.Tensor:
    """(N, ..., C) -> (N, C, ...) as F.cross_entropy wants."""
    return z if z.ndim == 2 else z.movedim(-1, 1)


def make_loss(spec, head: Head) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    kind = spec.kind
    smoothing = getattr(spec, "label_smoothing", 0.0)
    probabilities = not head.fused and head.final_activation in ("softmax", "sigmoid")

    if kind in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        def cross_entropy(z, y):
            if kind == "categorical_crossentropy" and y.dtype != torch.int64:
                y = _class_last(y)
            if probabilities:  # z holds probabilities
                logp = torch.log(z.clamp(EPS, 1.0))
                return F.cross_entropy(_class_last(logp), y, label_smoothing=smoothing)
            return F.cross_entropy(_class_last(z), y, label_smoothing=smoothing)
        return cross_entropy

    if kind == "binary_crossentropy":
        def binary(z, y):
            y = y.to(z.dtype).reshape(z.shape) if y.numel() == z.numel() else _one_hot_like(y, z)
            if smoothing:
                y = y * (1 - smoothing) + 0.5 * smoothing
            if probabilities:
                return F.binary_cross_entropy(z.clamp(EPS, 1 - EPS), y)
            return F.binary_cross_entropy_with_logits(z, y)
        return binary

    base = {"mse": F.mse_loss, "mae": F.l1_loss}.get(kind)
    if kind == "huber":
        delta = spec.delta
        base = lambda a, b: F.huber_loss(a, b, delta=delta)  # noqa: E731

    def regression(z, y):
        return base(z, _targets_like(y, z))
    return regression


def _one_hot_like(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return F.one_hot(y.long(), z.shape[-1]).to(z.dtype)


def _targets_like(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    if y.dtype == torch.int64 and y.ndim == z.ndim - 1 and z.shape[-1] > 1:
        return _one_hot_like(y, z)
    return y.to(z.dtype).reshape(z.shape)


# --- metrics ------------------------------------------------------------------------

class Metric:
    name: str
    size = 2  # statistics per metric

    def stats(self, out: torch.Tensor, y: torch.Tensor) -> list:  # pragma: no cover - interface
        """`size` values (tensors or numbers) summed over an epoch; value() turns the sums into the metric."""
        raise NotImplementedError

    def value(self, s: torch.Tensor) -> float:
        return float(s[0] / s[1]) if float(s[1]) > 0 else float("nan")

    higher_is_better = True
    needs_probabilities = True  # False: the metric reads only the argmax/top-k, the same on logits


def _count(x: torch.Tensor, n: int) -> list:
    return [x.sum(), n]


class Accumulator:
    """An epoch's sums: the loss (times the batch size), the sample count, and each
    metric's statistics. Few small tensor ops per batch and no device synchronization;
    `tensor()` gathers them (one float64 vector, for logs, DDP reduction, checkpoints)."""

    def __init__(self, metrics: list["Metric"], start: torch.Tensor | None = None):
        self.metrics = metrics
        self.slots: list = [0.0] * (2 + sum(m.size for m in metrics))
        if start is not None:
            self.slots = [float(v) for v in start]

    def add(self, loss: torch.Tensor, n: int, out: torch.Tensor | None, y: torch.Tensor) -> None:
        s = self.slots
        s[0] = torch.add(s[0], loss, alpha=n) if isinstance(s[0], torch.Tensor) else loss.double() * n + s[0]
        s[1] += n
        i = 2
        for metric in self.metrics:
            for value in metric.stats(out, y):
                s[i] = s[i] + value
                i += 1

    def tensor(self, device=None) -> torch.Tensor:
        return torch.tensor([float(v) for v in self.slots], dtype=torch.float64, device=device)


class SparseAccuracy(Metric):
    needs_probabilities = False

    def __init__(self, name="sparse_categorical_accuracy"):
        self.name = name

    def stats(self, out, y):
        pred = out.argmax(dim=-1)
        target = y if y.dtype == torch.int64 else y.argmax(dim=-1)
        return _count(pred == target.reshape(pred.shape), pred.numel())


class CategoricalAccuracy(SparseAccuracy):
    def __init__(self, name="categorical_accuracy"):
        self.name = name


class BinaryAccuracy(Metric):
    def __init__(self, threshold=0.5, name="binary_accuracy"):
        self.name, self.threshold = name, threshold

    def stats(self, out, y):
        pred = out >= self.threshold
        target = _targets_like(y, out) >= 0.5
        return _count(pred == target, pred.numel())


class TopK(Metric):
    needs_probabilities = False

    def __init__(self, k, name="top_k_accuracy"):
        self.name, self.k = name, k

    def stats(self, out, y):
        k = min(self.k, out.shape[-1])
        top = out.topk(k, dim=-1).indices
        target = y if y.dtype == torch.int64 else y.argmax(dim=-1)
        hit = (top == target.reshape(*top.shape[:-1], 1)).any(dim=-1)
        return _count(hit, hit.numel())


class MeanError(Metric):
    higher_is_better = False

    def __init__(self, kind):
        self.name, self.kind = kind, kind

    def stats(self, out, y):
        diff = out.float() - _targets_like(y, out).float()
        err = diff.abs() if self.kind == "mae" else diff * diff
        return [err.sum(dtype=torch.float64), err.numel()]


class PrecisionRecall(Metric):
    """Keras' Precision/Recall: every output element thresholded (one-hot targets for classes)."""

    def __init__(self, kind, threshold):
        self.name, self.kind, self.threshold = kind, kind, threshold

    def stats(self, out, y):
        pred = out >= self.threshold
        target = _targets_like(y, out) >= 0.5
        tp = (pred & target).sum()
        other = (pred & ~target).sum() if self.kind == "precision" else (~pred & target).sum()
        return [tp, tp + other]


def make_metrics(specs, loss: str, y: torch.Tensor, units: int | None, is_classifier: bool) -> list[Metric]:
    """The metric objects for `metrics=[...]` (None: [accuracy] for classifiers, else [])."""
    if specs is None:
        specs_list = ["accuracy"] if is_classifier else []
    else:
        specs_list = list(specs)
    metrics: list[Metric] = []
    for spec in specs_list:
        kind = spec if isinstance(spec, str) else spec.kind
        if kind == "accuracy":
            if loss == "binary_crossentropy" or units == 1:
                metrics.append(BinaryAccuracy(0.5, "accuracy"))
            elif loss == "categorical_crossentropy" or y.dtype != torch.int64:
                metrics.append(CategoricalAccuracy("accuracy"))
            else:
                metrics.append(SparseAccuracy("accuracy"))
        elif kind == "binary_accuracy":
            metrics.append(BinaryAccuracy(spec.threshold))
        elif kind == "categorical_accuracy":
            metrics.append(CategoricalAccuracy())
        elif kind == "sparse_categorical_accuracy":
            if y.dtype != torch.int64:
                raise SpecError.at(None, "sparse_categorical_accuracy needs class ids as labels; these are one-hot "
                                         "or real-valued", "use categorical_accuracy")
            metrics.append(SparseAccuracy())
        elif kind == "top_k_accuracy":
            metrics.append(TopK(spec.k))
        elif kind in ("mae", "mse"):
            metrics.append(MeanError(kind))
        elif kind in ("precision", "recall"):
            metrics.append(PrecisionRecall(kind, spec.threshold))
        else:  # pragma: no cover - the schema allows only the kinds above
            raise SpecError.at(None, f"unknown metric `{kind}`")
    names = [m.name for m in metrics]
    for name in names:
        if names.count(name) > 1:
            raise SpecError.at(None, f"metric `{name}` is listed twice")
    return metrics

"""Losses, with Keras' meanings: each kind's schema and, beside it, the function it trains with.

Fused losses: a model ending in softmax trained with (sparse) categorical cross-entropy, or
in sigmoid with binary cross-entropy, is trained on ``forward_logits`` with
``F.cross_entropy`` / ``F.binary_cross_entropy_with_logits`` (numerically stable). Any other
softmax/sigmoid ending gives probabilities, and the loss takes them as probabilities (Keras'
``from_logits=False``); a model without a final softmax/sigmoid trained with a cross-entropy
has its outputs taken as logits (``from_logits=True``).

The head also says where the classes are (the last axis, or a segmentation's class axis
of KxHxW) and which label id counts nowhere (a sequence labelling's padding): the task
(training/tasks.py) decides both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ...options import choice
from ..target import Target
from . import NonNegative, Positive, Probability, by_kind

EPS = 1e-7


@dataclass(frozen=True)
class Head:
    """How the model's last values are read: fused (logits) or not, and the final activation."""

    final_activation: str | None
    fused: bool  # trained on forward_logits
    class_dim: int = -1  # the dim of the outputs holding the classes, counted from the end
    ignore: int | None = None  # a label id that counts nowhere (padding)

    @classmethod
    def of(cls, loss, final_activation: str | None, class_dim: int = -1, ignore: int | None = None) -> Head:
        return cls(final_activation, loss.fuses is not None and loss.fuses == final_activation, class_dim, ignore)

    @property
    def gives_probabilities(self) -> bool:
        """True when what the step computes holds probabilities (an unfused softmax/sigmoid)."""
        return not self.fused and self.final_activation in ("softmax", "sigmoid")

    def outputs(self, z):
        """The model's outputs (probabilities for softmax/sigmoid) from what the step computed."""
        if not self.fused:
            return z
        import torch

        return torch.softmax(z, dim=self.class_dim) if self.final_activation == "softmax" else torch.sigmoid(z)

    def log_probabilities(self, z):
        """Log class probabilities from what the step computed (logits, or probabilities)."""
        import torch

        if self.gives_probabilities:
            return torch.log(z.clamp(EPS, 1.0))
        return torch.log_softmax(z, dim=self.class_dim)

    @property
    def ignore_index(self) -> int:
        """F.cross_entropy's ignore_index: the padding id, else PyTorch's default (-100, never a class)."""
        return self.ignore if self.ignore is not None else -100


def class_second(z, class_dim: int = -1):
    """The classes at dim 1, (N, C, ...), as F.cross_entropy wants."""
    return z if z.ndim == 2 else z.movedim(class_dim, 1)


def one_hot_like(y, z):
    import torch.nn.functional as F

    return F.one_hot(y.long(), z.shape[-1]).to(z.dtype)


def targets_like(y, z):
    """Labels in the outputs' shape and dtype: class ids become one-hot rows."""
    if not y.is_floating_point() and y.ndim == z.ndim - 1 and z.shape[-1] > 1:
        return one_hot_like(y, z)
    return y.to(z.dtype).reshape(z.shape)


def _cross_entropy(smoothing: float, head: Head, one_hot: bool) -> Callable:
    import torch
    import torch.nn.functional as F

    def cross_entropy(z, y):
        if one_hot and y.is_floating_point():
            y = class_second(y)
        if head.gives_probabilities:
            z = torch.log(z.clamp(EPS, 1.0))
        return F.cross_entropy(class_second(z, head.class_dim), y, label_smoothing=smoothing,
                               ignore_index=head.ignore_index)

    return cross_entropy


def _regression(base: Callable) -> Callable:
    def regression(z, y):
        return base(z, targets_like(y, z))

    return regression


class SparseCategoricalCrossentropy(choice("sparse_categorical_crossentropy", ("label_smoothing",),
                                           label_smoothing=(Probability, 0.0))):
    """Class ids against class scores."""

    fuses: ClassVar[str | None] = "softmax"

    def function(self, head: Head) -> Callable:
        return _cross_entropy(self.label_smoothing, head, one_hot=False)


class CategoricalCrossentropy(choice("categorical_crossentropy", ("label_smoothing",),
                                     label_smoothing=(Probability, 0.0))):
    """One-hot (or probability) rows against class scores."""

    fuses: ClassVar[str | None] = "softmax"

    def function(self, head: Head) -> Callable:
        return _cross_entropy(self.label_smoothing, head, one_hot=True)


class BinaryCrossentropy(choice("binary_crossentropy", ("label_smoothing",), label_smoothing=(Probability, 0.0))):
    """Each output a probability of its label being 1."""

    fuses: ClassVar[str | None] = "sigmoid"

    def function(self, head: Head) -> Callable:
        import torch.nn.functional as F

        smoothing = self.label_smoothing

        def binary(z, y):
            y = y.to(z.dtype).reshape(z.shape) if y.numel() == z.numel() else one_hot_like(y, z)
            if smoothing:
                y = y * (1 - smoothing) + 0.5 * smoothing
            if head.gives_probabilities:
                return F.binary_cross_entropy(z.clamp(EPS, 1 - EPS), y)
            return F.binary_cross_entropy_with_logits(z, y)

        return binary


class Dice(choice("dice", ("smooth", "crossentropy"), smooth=(Positive, 1.0), crossentropy=(NonNegative, 0.0))):
    """1 - the soft Dice coefficient (Milletari et al. 2016), averaged over the classes, for class-id
    masks; plus `crossentropy` times the per-pixel cross-entropy."""

    fuses: ClassVar[str | None] = "softmax"

    def function(self, head: Head) -> Callable:
        import torch.nn.functional as F

        smooth, weight = self.smooth, self.crossentropy
        cross_entropy = _cross_entropy(0.0, head, one_hot=False)

        def dice(z, y):
            probabilities = class_second(head.log_probabilities(z).exp(), head.class_dim)  # (N, C, ...)
            classes = probabilities.shape[1]
            keep = (y != head.ignore_index).unsqueeze(1).to(probabilities.dtype)
            truth = F.one_hot(y.long().clamp(0, classes - 1), classes).movedim(-1, 1).to(probabilities.dtype) * keep
            probabilities = probabilities * keep
            axes = [0, *range(2, probabilities.ndim)]
            overlap = (probabilities * truth).sum(axes)
            total = probabilities.sum(axes) + truth.sum(axes)
            loss = 1 - ((2 * overlap + smooth) / (total + smooth)).mean()
            return loss + weight * cross_entropy(z, y) if weight else loss

        return dice


class Mse(choice("mse")):
    """Mean squared error."""

    fuses: ClassVar[str | None] = None

    def function(self, head: Head) -> Callable:
        import torch.nn.functional as F

        return _regression(F.mse_loss)


class Mae(choice("mae")):
    """Mean absolute error."""

    fuses: ClassVar[str | None] = None

    def function(self, head: Head) -> Callable:
        import torch.nn.functional as F

        return _regression(F.l1_loss)


class Huber(choice("huber", ("delta",), delta=(Positive, 1.0))):
    """Squared error below `delta`, absolute error above it."""

    fuses: ClassVar[str | None] = None

    def function(self, head: Head) -> Callable:
        import torch.nn.functional as F

        return _regression(functools.partial(F.huber_loss, delta=self.delta))


LOSSES = by_kind(BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Dice, Mse, Mae, Huber)
LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "bce": "binary_crossentropy",
                "cce": "categorical_crossentropy", "sparse_cce": "sparse_categorical_crossentropy"}


def default_loss(target: Target, labels):
    """The loss of a train section that names none (see `loss_for_output`)."""
    return loss_for_output(target.final_activation, labels, target.output_dims)


def loss_for_output(final_activation: str | None, labels, output_dims: tuple):
    """The loss an output takes when none is named: softmax takes sparse categorical
    cross-entropy for class ids and categorical for one-hot rows, sigmoid binary
    cross-entropy, anything else mse. (A chain's one output, or each output of a graph.)"""
    if final_activation == "softmax":
        import numpy as np

        y = np.asarray(labels)
        units = output_dims[-1] if output_dims else 1
        one_hot = (y.ndim == 2 and isinstance(units, int) and y.shape[1] == units
                   and len(output_dims) == 1 and y.dtype != object)
        return CategoricalCrossentropy() if one_hot else SparseCategoricalCrossentropy()
    if final_activation == "sigmoid":
        return BinaryCrossentropy()
    return Mse()

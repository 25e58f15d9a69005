"""Losses, with Keras' meanings: each kind's schema and, beside it, the function it trains with.

Fused losses: a model ending in softmax trained with (sparse) categorical cross-entropy, or
in sigmoid with binary cross-entropy, is trained on ``forward_logits`` with
``F.cross_entropy`` / ``F.binary_cross_entropy_with_logits`` (numerically stable). Any other
softmax/sigmoid ending gives probabilities, and the loss takes them as probabilities (Keras'
``from_logits=False``); a model without a final softmax/sigmoid trained with a cross-entropy
has its outputs taken as logits (``from_logits=True``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ...options import choice
from ..target import Target
from . import Positive, Probability, by_kind

EPS = 1e-7


@dataclass(frozen=True)
class Head:
    """How the model's last values are read: fused (logits) or not, and the final activation."""

    final_activation: str | None
    fused: bool  # trained on forward_logits

    @classmethod
    def of(cls, loss, final_activation: str | None) -> Head:
        return cls(final_activation, loss.fuses is not None and loss.fuses == final_activation)

    @property
    def gives_probabilities(self) -> bool:
        """True when what the step computes holds probabilities (an unfused softmax/sigmoid)."""
        return not self.fused and self.final_activation in ("softmax", "sigmoid")

    def outputs(self, z):
        """The model's outputs (probabilities for softmax/sigmoid) from what the step computed."""
        if not self.fused:
            return z
        import torch

        return torch.softmax(z, dim=-1) if self.final_activation == "softmax" else torch.sigmoid(z)


def class_last(z):
    """(N, ..., C) -> (N, C, ...) as F.cross_entropy wants."""
    return z if z.ndim == 2 else z.movedim(-1, 1)


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
            y = class_last(y)
        if head.gives_probabilities:
            z = torch.log(z.clamp(EPS, 1.0))
        return F.cross_entropy(class_last(z), y, label_smoothing=smoothing)

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


LOSSES = by_kind(BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Mse, Mae, Huber)
LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "bce": "binary_crossentropy",
                "cce": "categorical_crossentropy", "sparse_cce": "sparse_categorical_crossentropy"}


def default_loss(target: Target, labels):
    """The loss of a train section that names none: softmax takes sparse categorical
    cross-entropy for class ids and categorical for one-hot rows, sigmoid binary
    cross-entropy, anything else mse."""
    if target.final_activation == "softmax":
        import numpy as np

        y = np.asarray(labels)
        one_hot = (y.ndim == 2 and target.units is not None and y.shape[1] == target.units
                   and len(target.output_dims) == 1 and y.dtype != object)
        return CategoricalCrossentropy() if one_hot else SparseCategoricalCrossentropy()
    if target.final_activation == "sigmoid":
        return BinaryCrossentropy()
    return Mse()

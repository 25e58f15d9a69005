"""Input normalization: each kind's schema and how it finds its statistics in the training
data (x' = (x - mean) / std, per channel for images, per feature otherwise). The result is
the run's preprocess.json `normalize` entry (spec_compiler/run/records.py: Normalization)."""

from __future__ import annotations

from ...options import choice
from . import Positive, by_kind


def _statistics(x, input_kind: str, kind: str):
    import torch

    from ...run.records import Normalization

    values = x.double()
    if input_kind == "image" and x.ndim == 4:
        reduce, axis = (0, 2, 3), 0
    else:
        reduce, axis = tuple(range(x.ndim - 1)), x.ndim - 2  # the last axis of a sample
    if kind == "standard":
        mean, std = values.mean(dim=reduce), values.std(dim=reduce, unbiased=False)
    else:
        mean = values.amin(dim=reduce)
        std = values.amax(dim=reduce) - mean
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return Normalization(kind=kind, mean=mean.tolist(), std=std.tolist(), axis=axis)


class NoNormalization(choice("none")):
    def fit(self, x, input_kind: str):
        return None


class Standard(choice("standard")):
    """Mean 0 and standard deviation 1 on the training data."""

    def fit(self, x, input_kind: str):
        return _statistics(x, input_kind, "standard")


class MinMax(choice("minmax")):
    """The training data's minimum to 0 and maximum to 1."""

    def fit(self, x, input_kind: str):
        return _statistics(x, input_kind, "minmax")


class Scale(choice("scale", ("factor",), factor=(Positive, 1 / 255))):
    """A fixed factor: x' = x * factor."""

    def fit(self, x, input_kind: str):
        from ...run.records import Normalization

        return Normalization(kind="scale", mean=[0.0], std=[1.0 / self.factor], axis=None)


NORMALIZATIONS = by_kind(NoNormalization, Standard, MinMax, Scale)

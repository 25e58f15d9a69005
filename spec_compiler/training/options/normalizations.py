"""Input normalization: each kind's schema and how it finds its statistics in the training
data (x' = (x - mean) / std, per channel for images, per feature otherwise), from the
training samples as a tensor or as chunks of them (one streaming pass, in flat memory). The
result is the run's preprocess.json `normalize` entry (spec_compiler/run/records.py:
Normalization)."""

from __future__ import annotations

from ...options import choice
from . import Positive, by_kind


def _statistics(chunks, input_kind: str, kind: str):
    """Per-channel (images) or per-feature statistics over `chunks` of samples (a tensor, or
    an iterable of them: a streaming pass over data larger than memory). Each chunk's mean
    and variance come from torch.var_mean (Welford, float32); chunks merge in float64 by Chan
    et al.'s pairwise update, so the result does not depend on how the data are chunked
    beyond float32 rounding (relative error about 1e-7)."""
    import torch

    from ...run.records import Normalization

    count, mean, squares, low, high, axis = 0, 0.0, 0.0, None, None, 0
    for x in [chunks] if isinstance(chunks, torch.Tensor) else chunks:
        values = x.float()
        if input_kind == "image" and x.ndim == 4:
            reduce, axis = (0, 2, 3), 0
        else:
            reduce, axis = tuple(range(x.ndim - 1)), x.ndim - 2  # the last axis of a sample
        n = values.numel() // max(1, values.shape[axis + 1])
        if n == 0:
            continue
        variance, part_mean = (v.double() for v in torch.var_mean(values, dim=reduce, correction=0))
        part_low, part_high = values.amin(dim=reduce).double(), values.amax(dim=reduce).double()
        delta, total = part_mean - mean, count + n
        mean = mean + delta * (n / total)
        squares = squares + variance * n + delta ** 2 * (count * n / total)
        low = part_low if low is None else torch.minimum(low, part_low)
        high = part_high if high is None else torch.maximum(high, part_high)
        count = total
    if kind == "standard":
        center, spread = mean, (squares / count).sqrt()
    else:
        center, spread = low, high - low
    spread = torch.where(spread > 1e-12, spread, torch.ones_like(spread))
    return Normalization(kind=kind, mean=center.tolist(), std=spread.tolist(), axis=axis)


class NoNormalization(choice("none")):
    def fit(self, chunks, input_kind: str):
        return None


class Standard(choice("standard")):
    """Mean 0 and standard deviation 1 on the training data."""

    def fit(self, chunks, input_kind: str):
        return _statistics(chunks, input_kind, "standard")


class MinMax(choice("minmax")):
    """The training data's minimum to 0 and maximum to 1."""

    def fit(self, chunks, input_kind: str):
        return _statistics(chunks, input_kind, "minmax")


class Scale(choice("scale", ("factor",), factor=(Positive, 1 / 255))):
    """A fixed factor: x' = x * factor."""

    def fit(self, chunks, input_kind: str):
        from ...run.records import Normalization

        return Normalization(kind="scale", mean=[0.0], std=[1.0 / self.factor], axis=None)


NORMALIZATIONS = by_kind(NoNormalization, Standard, MinMax, Scale)

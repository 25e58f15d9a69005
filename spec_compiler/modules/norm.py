"""PyTorch modules for the normalization kinds (layers/norm.py).

They subclass torch's own classes (nn.BatchNorm1d/2d, nn.LayerNorm, nn.GroupNorm,
nn.InstanceNorm1d/2d, nn.LocalResponseNorm), so code that looks for `_BatchNorm` (the
lowering keeps the batch norms of a frozen layer in inference mode) finds them.
"""

from __future__ import annotations

import torch
from torch import nn


class _CenterScale:
    """Mixin: Keras' `center` (beta, PyTorch's `bias`) and `scale` (gamma, `weight`)
    may be turned off one at a time; a missing one is registered as None, which
    F.batch_norm and F.layer_norm read as "no scale" / "no shift"."""

    def _keep(self, center: bool, scale: bool) -> None:
        self.center, self.scale = center, scale
        if not scale:
            self.weight = None  # type: ignore[assignment]
        if not center:
            self.bias = None  # type: ignore[assignment]

    def reset_parameters(self) -> None:  # nn.BatchNorm / nn.LayerNorm call it from __init__
        reset_running_stats = getattr(self, "reset_running_stats", None)
        if reset_running_stats is not None:
            reset_running_stats()
        weight, bias = getattr(self, "weight", None), getattr(self, "bias", None)
        if weight is not None:
            nn.init.ones_(weight)
        if bias is not None:
            nn.init.zeros_(bias)


class _BatchNorm(_CenterScale):
    """torch's batch norm with `center` and `scale` in place of `affine`. `momentum` is
    PyTorch's (the weight of the new batch); the builder converts Keras' to it."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, center: bool = True,
                 scale: bool = True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=center or scale)  # type: ignore[call-arg]
        self._keep(center, scale)


class BatchNorm1d(_BatchNorm, nn.BatchNorm1d):
    """Batch normalization of a (N, F) vector's features."""


class BatchNorm2d(_BatchNorm, nn.BatchNorm2d):
    """Batch normalization of a (N, C, H, W) image's channels."""


class BatchNormSequence(_BatchNorm, nn.BatchNorm1d):
    """Batch normalization of a (N, T, F) sequence's features (Keras' axis=-1): the
    statistics run over the batch and every time step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def batch_norm(rank: int, features: int, momentum: float, eps: float, center: bool, scale: bool) -> nn.Module:
    """A batch norm for a sample of `rank` (1 vector, 2 sequence, 3 image).

    `momentum` is Keras' (the weight of the old running value, 0.99 by default);
    PyTorch's is the weight of the new batch value, so the module gets 1 - momentum."""
    cls = {1: BatchNorm1d, 2: BatchNormSequence, 3: BatchNorm2d}[rank]
    return cls(features, eps=eps, momentum=round(1.0 - momentum, 12), center=center, scale=scale)


class LayerNorm(_CenterScale, nn.LayerNorm):
    """Layer normalization over the last axis (features of a vector or sequence), with
    `center` and `scale` in place of `elementwise_affine` and `bias`."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, center: bool = True, scale: bool = True):
        super().__init__(normalized_shape, eps=eps, elementwise_affine=center or scale, bias=center)
        self._keep(center, scale)


class LayerNormChannels(LayerNorm):
    """Layer normalization over the channels of a (N, C, H, W) image at every position
    (what Keras' LayerNormalization(axis=-1) does on a channels-last image)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def layer_norm(rank: int, features: int, eps: float, center: bool, scale: bool) -> nn.Module:
    cls = LayerNormChannels if rank == 3 else LayerNorm
    return cls(features, eps=eps, center=center, scale=scale)


class GroupNorm(_CenterScale, nn.GroupNorm):
    """Group normalization of the channels of (N, C, H, W) or (N, C), with `center` and
    `scale` in place of `affine`."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, center: bool = True,
                 scale: bool = True):
        super().__init__(num_groups, num_channels, eps=eps, affine=center or scale)
        self._keep(center, scale)


class GroupNormSequence(GroupNorm):
    """Group normalization of a (N, T, F) sequence's features, statistics over time (as on
    the (N, F, T) layout of a 1d convolution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def group_norm(rank: int, groups: int, channels: int, eps: float, center: bool, scale: bool) -> nn.Module:
    cls = GroupNormSequence if rank == 2 else GroupNorm
    return cls(groups, channels, eps=eps, center=center, scale=scale)


class _InstanceNorm(_CenterScale):
    """torch's instance norm with `center` and `scale` in place of `affine`; always the
    sample's own statistics (no running ones)."""

    def __init__(self, num_features: int, eps: float = 1e-5, center: bool = True, scale: bool = True):
        super().__init__(num_features, eps=eps, affine=center or scale)  # type: ignore[call-arg]
        self._keep(center, scale)


class InstanceNorm2d(_InstanceNorm, nn.InstanceNorm2d):
    """Instance normalization of each channel of a (N, C, H, W) image over its positions."""


class InstanceNormSequence(_InstanceNorm, nn.InstanceNorm1d):
    """Instance normalization of each feature of a (N, T, F) sequence over time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


def instance_norm(rank: int, channels: int, eps: float, center: bool, scale: bool) -> nn.Module:
    cls = InstanceNormSequence if rank == 2 else InstanceNorm2d
    return cls(channels, eps=eps, center=center, scale=scale)


class LocalResponseNorm(nn.LocalResponseNorm):
    """AlexNet's local response normalization across channels (Krizhevsky et al. 2012):

        b_c = a_c / (k + alpha * sum_{c' within size/2 of c} a_c'^2) ^ beta

    `alpha` as in the paper and TensorFlow. PyTorch's nn.LocalResponseNorm divides alpha
    by `size`, so it is given alpha * size."""

    def __init__(self, size: int, alpha: float, beta: float, k: float):
        super().__init__(size, alpha * size, beta, k)
        self.paper_alpha = alpha

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.paper_alpha} (not divided by size), beta={self.beta}, k={self.k}"

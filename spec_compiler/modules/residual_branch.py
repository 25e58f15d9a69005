"""PyTorch modules for layer_scale and drop_path (layers/residual_branch.py)."""

from __future__ import annotations

import torch
from torch import nn


class LayerScale(nn.Module):
    """x times a learned factor per channel, `gamma` (C,): along the channels of a
    (N, C, H, W) image, or the last axis of a sequence or vector."""

    def __init__(self, channels: int, initial: float, channels_first: bool):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(initial)))
        self.channels_first = channels_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.gamma.view(-1, 1, 1) if self.channels_first else self.gamma)

    def extra_repr(self) -> str:
        return f"channels={self.gamma.shape[0]}, channels_first={self.channels_first}"


class DropPath(nn.Module):
    """Stochastic depth per sample (torchvision's StochasticDepth, mode "row"): while
    training, each sample's input is zeroed with probability `rate` and the kept ones are
    divided by 1 - rate; the identity in evaluation."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        survival = 1.0 - self.rate
        keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
        return x * keep / survival

    def extra_repr(self) -> str:
        return f"rate={self.rate}"

"""PyTorch modules for the resizing kinds (layers/spatial.py): upsample, pad and crop
along the height and width of (N, C, H, W) images or the time axis of (N, T, F)
sequences."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Upsample(nn.Module):
    """F.interpolate by a factor or to a size; a (N, T, F) sequence is resized along T."""

    def __init__(self, mode: str, align_corners: bool, factor: tuple | None = None, size: tuple | None = None):
        super().__init__()
        self.mode, self.align_corners, self.factor, self.size = mode, align_corners, factor, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = x.dim() == 3
        if sequence:
            x = x.transpose(1, 2)
        corners = self.align_corners if self.mode != "nearest" else None
        y = F.interpolate(x, size=self.size, scale_factor=self.factor, mode=self.mode, align_corners=corners)
        return y.transpose(1, 2) if sequence else y

    def extra_repr(self) -> str:
        target = f"size={self.size}" if self.size is not None else f"factor={self.factor}"
        return f"{target}, mode={self.mode}, align_corners={self.align_corners}"


def _pad_list(sides: tuple) -> list[int]:
    """F.pad's amounts (last axis first) from (before, after) per spatial axis."""
    return [amount for before_after in reversed(sides) for amount in before_after]


class Pad(nn.Module):
    """Pads the spatial axes: (before, after) per axis, H and W of an image or T of a sequence."""

    def __init__(self, sides: tuple, mode: str, value: float):
        super().__init__()
        self.sides, self.mode, self.value = tuple(tuple(s) for s in sides), mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = len(self.sides) == 1
        if sequence:
            x = x.transpose(1, 2)
        if self.mode == "constant":
            y = F.pad(x, _pad_list(self.sides), mode="constant", value=self.value)
        else:
            y = F.pad(x, _pad_list(self.sides), mode=self.mode)
        return y.transpose(1, 2) if sequence else y

    def extra_repr(self) -> str:
        return f"sides={self.sides}, mode={self.mode}, value={self.value}"


class Crop(nn.Module):
    """Cuts (before, after) from each spatial axis: H and W of an image, T of a sequence."""

    def __init__(self, sides: tuple):
        super().__init__()
        self.sides = tuple(tuple(s) for s in sides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = 2 if x.dim() == 4 else 1  # images: H, W; sequences: T
        for offset, (before, after) in enumerate(self.sides):
            size = x.shape[first + offset]
            # An empty result would reach the next layer's kernel (instancenorm crashes on one):
            # a message instead (not while an exporter traces: the graph keeps the length dynamic).
            if not (torch.jit.is_tracing() or torch.compiler.is_compiling()) and size - before - after < 1:
                raise ValueError(f"crop: cutting {before} + {after} leaves nothing of a length of {size}")
            x = x.narrow(first + offset, before, size - before - after)
        return x

    def extra_repr(self) -> str:
        return f"sides={self.sides}"

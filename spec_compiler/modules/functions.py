"""PyTorch modules for the parameter-free function kinds (layers/functions.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def torch_dim(axis: int) -> int:
    """A spec axis (batch excluded, negatives from the end) as a batch-first torch dim."""
    return axis + 1 if axis >= 0 else axis


class L2Normalize(nn.Module):
    """x / max(||x||_2, eps) along one axis (F.normalize)."""

    def __init__(self, axis: int, eps: float = 1e-12):
        super().__init__()
        self.dim, self.eps = torch_dim(axis), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2.0, dim=self.dim, eps=self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"


class Reshape(nn.Module):
    """Each sample to `dims`, the batch left to the reshape (-1): nn.Unflatten exports with
    the tracing batch fixed in the graph's shapes, and a recurrent layer or attention after
    it then fails in ONNX Runtime at another batch size."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, *self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Scale(nn.Module):
    """x * factor (a constant, not a parameter)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class Clip(nn.Module):
    """Clamps every value into [low, high] (either bound may be None)."""

    def __init__(self, low: float | None, high: float | None):
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"min={self.low}, max={self.high}"


class Permute(nn.Module):
    """Reorders the axes of each sample; `order` holds their torch dims (the batch is dim 0)."""

    def __init__(self, order: tuple[int, ...]):
        super().__init__()
        self.order = tuple(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *self.order)

    def extra_repr(self) -> str:
        return f"order={self.order}"


class Reduce(nn.Module):
    """mean, sum or max over one axis."""

    def __init__(self, op: str, axis: int, keepdims: bool):
        super().__init__()
        self.op, self.dim, self.keepdims = op, torch_dim(axis), keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "mean":
            return x.mean(dim=self.dim, keepdim=self.keepdims)
        if self.op == "sum":
            return x.sum(dim=self.dim, keepdim=self.keepdims)
        return x.amax(dim=self.dim, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"{self.op}, dim={self.dim}, keepdims={self.keepdims}"


class Elementwise(nn.Module):
    """A parameter-free function of each value: abs, square, sqrt, exp or log."""

    def __init__(self, op: str):
        super().__init__()
        if op not in ("abs", "square", "sqrt", "exp", "log"):
            raise ValueError(f"unknown elementwise function {op!r}")
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "abs":
            return torch.abs(x)
        if self.op == "square":
            return torch.square(x)
        if self.op == "sqrt":
            return torch.sqrt(x)
        if self.op == "exp":
            return torch.exp(x)
        return torch.log(x)

    def extra_repr(self) -> str:
        return self.op


class ExpandDims(nn.Module):
    """Inserts a size-1 axis (torch.unsqueeze)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Squeeze(nn.Module):
    """Removes one size-1 axis (torch.squeeze on that axis)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Slice(nn.Module):
    """Keeps positions start to end (end excluded) along one torch dim."""

    def __init__(self, dim: int, start: int, end: int):
        super().__init__()
        self.dim, self.start, self.end = dim, start, end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.dim, self.start, self.end - self.start)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, start={self.start}, end={self.end}"


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle of (N, C, H, W): view the channels as (groups, C/groups),
    transpose to (C/groups, groups), flatten back."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"

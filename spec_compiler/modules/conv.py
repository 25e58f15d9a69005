"""PyTorch modules for the convolution and pooling kinds (layers/conv.py): convs,
transposed convs and pools with Keras' `same` padding, 1d layers over (N, T, F)
sequences, separable convs and global pooling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _same_pads(sizes, kernel, stride, dilation) -> list[int]:
    """F.pad amounts (last axis first) for Keras' `same`: out = ceil(size / stride)."""
    pads: list[int] = []
    for size, k, s, d in reversed(list(zip(sizes, kernel, stride, dilation))):
        effective = d * (k - 1) + 1
        out = -(-size // s)
        total = max((out - 1) * s + effective - size, 0)
        pads += [total // 2, total - total // 2]
    return pads


class _SamePadded(nn.Module):
    """Mixin: pad like Keras' `same` (extra padding after), then run the window op."""

    def _pad(self, x: torch.Tensor, kernel, stride, dilation, value: float = 0.0) -> torch.Tensor:
        sizes = x.shape[-len(kernel):]
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            sizes = [int(s) for s in sizes]
        pads = _same_pads(sizes, kernel, stride, dilation)
        return F.pad(x, pads, value=value) if any(pads) else x


class Conv2dSame(nn.Conv2d, _SamePadded):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._pad(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Conv1dSequence(nn.Conv1d):
    """A Conv1d over a (N, T, F) sequence; same parameters as nn.Conv1d."""

    same: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if self.same:
            sizes = x.shape[-1:]
            pads = _same_pads(sizes, self.kernel_size, self.stride, self.dilation)
            x = F.pad(x, pads) if any(pads) else x
            y = F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        else:
            y = super().forward(x)
        return y.transpose(1, 2)


def conv(dims: int, in_channels: int, out_channels: int, kernel, stride, pad, dilation, groups: int, bias: bool):
    """nn.Conv1d/2d with Keras padding semantics. 1d convs take (N, T, F)."""
    if dims == 1:
        same = pad == "same"
        module = Conv1dSequence(in_channels, out_channels, kernel, stride,
                                0 if same or pad == "valid" else pad, dilation, groups, bias)
        module.same = same
        return module
    if pad == "same":
        if all(s == 1 for s in stride) and all((d * (k - 1)) % 2 == 0 for k, d in zip(kernel, dilation)):
            return nn.Conv2d(in_channels, out_channels, kernel, stride, "same", dilation, groups, bias)
        return Conv2dSame(in_channels, out_channels, kernel, stride, 0, dilation, groups, bias)
    return nn.Conv2d(in_channels, out_channels, kernel, stride, 0 if pad == "valid" else pad, dilation, groups, bias)


def _same_transpose_padding(kernel, stride, dilation) -> tuple[list[int], list[int], list[int]]:
    """padding, output_padding and trailing trim per axis so that a transposed conv gives
    size * stride, cropping as Keras' `same` does (the extra row or column at the end)."""
    padding, extra, trim = [], [], []
    for k, s, d in zip(kernel, stride, dilation):
        total = d * (k - 1) + 1 - s  # how much longer than size * stride the full output is
        padding.append(max(total, 0) // 2)
        trim.append(max(total, 0) % 2)
        extra.append(max(-total, 0))  # shorter: output_padding appends positions (they get the bias)
    return padding, extra, trim


class ConvTranspose2dTrimmed(nn.ConvTranspose2d):
    """nn.ConvTranspose2d that drops the last row and/or column (`trim`): Keras' `same`
    when the crop it needs is odd; same parameters as nn.ConvTranspose2d."""

    trim: tuple = (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.trim[0]:
            y = y[:, :, :-1, :]
        if self.trim[1]:
            y = y[:, :, :, :-1]
        return y


class ConvTranspose1dSequence(nn.ConvTranspose1d):
    """nn.ConvTranspose1d over a (N, T, F) sequence (`trim`: drop the last step); same parameters."""

    trim: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x.transpose(1, 2))
        if self.trim:
            y = y[:, :, :-1]
        return y.transpose(1, 2)


def conv_transpose(dims: int, in_channels: int, out_channels: int, kernel, stride, pad, output_padding, dilation,
                   groups: int, bias: bool):
    """nn.ConvTranspose1d/2d with Keras' `same` (size * stride). 1d ones take (N, T, F)."""
    trim = [0] * dims
    if pad == "same":
        pad, output_padding, trim = _same_transpose_padding(kernel, stride, dilation)
    elif pad == "valid":
        pad = 0
    if dims == 1:
        module = ConvTranspose1dSequence(in_channels, out_channels, kernel, stride, pad, output_padding, groups,
                                         bias, dilation)
        module.trim = trim[0]
        return module
    if any(trim):
        module = ConvTranspose2dTrimmed(in_channels, out_channels, kernel, stride, pad, output_padding, groups, bias,
                                        dilation)
        module.trim = tuple(trim)
        return module
    return nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, pad, output_padding, groups, bias, dilation)


class SeparableConv2d(nn.Module):
    """Keras' SeparableConv2D: depthwise (no bias) then pointwise 1x1 (with bias)."""

    def __init__(self, in_channels, filters, kernel, stride, pad, dilation, multiplier, bias):
        super().__init__()
        mid = in_channels * multiplier
        self.depthwise = conv(2, in_channels, mid, kernel, stride, pad, dilation, in_channels, False)
        self.pointwise = nn.Conv2d(mid, filters, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class Pool(_SamePadded):
    """Max or average pooling with Keras padding (padding left out of averages)."""

    def __init__(self, dims: int, mode: str, size, stride, pad, ceil: bool):
        super().__init__()
        self.dims, self.mode, self.size, self.stride, self.ceil = dims, mode, tuple(size), tuple(stride), ceil
        self.same = pad == "same"
        self.padding = (0,) * dims if pad in ("valid", "same") else tuple(pad if isinstance(pad, tuple) else (pad,) * dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = self.dims == 1
        if sequence:
            x = x.transpose(1, 2)
        if self.same:
            if self.mode == "max":
                x = self._pad(x, self.size, self.stride, (1,) * self.dims, value=float("-inf"))
                y = self._window(x, (0,) * self.dims)
            else:
                # Average over real positions only: pool the padded input and a padded
                # mask of ones, then divide.
                ones = torch.ones_like(x[:1, :1])
                total = self._window(self._pad(x, self.size, self.stride, (1,) * self.dims), (0,) * self.dims)
                count = self._window(self._pad(ones, self.size, self.stride, (1,) * self.dims), (0,) * self.dims)
                y = total / count
        else:
            y = self._window(x, self.padding)
        return y.transpose(1, 2) if sequence else y

    def _window(self, x: torch.Tensor, padding) -> torch.Tensor:
        if self.mode == "max":
            fn = F.max_pool1d if self.dims == 1 else F.max_pool2d
            return fn(x, self.size, self.stride, padding, ceil_mode=self.ceil)
        fn = F.avg_pool1d if self.dims == 1 else F.avg_pool2d
        return fn(x, self.size, self.stride, padding, ceil_mode=self.ceil, count_include_pad=False)


class GlobalPool(nn.Module):
    """Average or maximum over every position; `keepdims` keeps the pooled axes with size 1."""

    def __init__(self, mode: str, spatial_dims: tuple[int, ...], keepdims: bool = False):
        super().__init__()
        self.mode, self.spatial_dims, self.keepdims = mode, spatial_dims, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "avg":
            return x.mean(dim=self.spatial_dims, keepdim=self.keepdims)
        return x.amax(dim=self.spatial_dims, keepdim=self.keepdims)

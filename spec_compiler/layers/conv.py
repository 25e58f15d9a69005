"""Convolutions and pooling, 1d (on TxF sequences) and 2d (on CxHxW images).

The window arithmetic is shared (`shapes.window_output`). 1d layers follow Keras:
they take a TxF sequence and return T'xfilters, so a text CNN reads naturally
after `embedding`; the builders transpose to PyTorch's channels-first internally.
"""

from __future__ import annotations

from math import prod
from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field, model_validator

from ..options import WeightOptions
from ..shapes import ShapeError, TensorType, as_tuple, describe, known_size, window_output
from .base import ActivationName, Count, LayerKind, LayerParams, Slot, WeightRoles, register, require_float

Pos = Annotated[int, Field(gt=0)]
NonNeg = Annotated[int, Field(ge=0)]
Window = Union[Pos, tuple[Pos, ...]]
Padding = Union[Literal["valid", "same"], NonNeg, tuple[NonNeg, ...]]


def _check_tuple(name: str, value, n: int):
    if isinstance(value, tuple) and len(value) not in (1, n):
        raise ValueError(f"{name} needs 1 or {n} sizes, got {len(value)}")


class _ConvParams(LayerParams, WeightOptions):
    kernel: Window
    stride: Window = 1
    pad: Padding = "valid"
    dilation: Window = 1
    bias: bool = True
    activation: ActivationName | None = None

    DIMS: ClassVar[int] = 2

    @model_validator(mode="after")
    def _sizes(self):
        for name in ("kernel", "stride", "dilation", "pad"):
            _check_tuple(name, getattr(self, name), self.DIMS)
        return self


class ConvParams(_ConvParams):
    filters: Pos
    groups: Pos = 1


class Conv1dParams(ConvParams):
    DIMS: ClassVar[int] = 1


def _spatial(x: TensorType, dims: int) -> tuple:
    """The spatial sizes and channel count of a 1d (TxF) or 2d (CxHxW) input."""
    return (x.dims[:1], x.dims[1]) if dims == 1 else (x.dims[1:], x.dims[0])


def _require(x: TensorType, dims: int, kind: str) -> None:
    require_float(x, kind)
    if dims == 2 and x.rank != 3:
        hint = "use conv1d / maxpool1d on a TxF sequence" if x.rank == 2 else (
            "reshape the vector to CxHxW first (after global pooling, `keepdims=true` keeps Cx1x1)" if x.rank == 1
            else None)
        raise ShapeError(f"{kind} expects an image CxHxW, got {describe(x)}", hint, about_input=True)
    if dims == 1 and x.rank != 2:
        hint = "use conv / maxpool (2d) on an image" if x.rank == 3 else None
        raise ShapeError(f"{kind} expects a sequence TxF, got {describe(x)}", hint, about_input=True)


def _known_channels(x: TensorType, dims: int, kind: str) -> int:
    """The input channels a conv's weights are sized by (a pool needs none)."""
    _require(x, dims, kind)
    return known_size(x, -1 if dims == 1 else 0, kind, "channels")


def window_sizes(p, x: TensorType, dims: int, kernel, what: str) -> tuple:
    """Output spatial sizes for a window op (conv or pool)."""
    sizes, _ = _spatial(x, dims)
    kernel = as_tuple(kernel, dims)
    stride = as_tuple(p.stride, dims)
    dilation = as_tuple(getattr(p, "dilation", 1), dims)
    pad = p.pad if isinstance(p.pad, str) else as_tuple(p.pad, dims)
    out = []
    for axis in range(dims):
        padding = pad if isinstance(pad, str) else pad[axis]
        if padding == "valid":
            padding = 0
        try:
            out.append(window_output(sizes[axis], kernel[axis], stride[axis], padding, dilation[axis],
                                     ceil_mode=getattr(p, "ceil", False), what=what))
        except ShapeError as error:
            # name the whole window and input, and which axis is too small
            axis_name = ("time",) if dims == 1 else ("height", "width")
            padded = f", padded to {sizes[axis] + 2 * padding}" if padding else ""
            raise ShapeError(
                f"{what} {'x'.join(map(str, kernel))} is larger than its input {x} "
                f"({axis_name[axis]} {sizes[axis]}{padded})", error.hint, about_input=True,
            ) from None
    return tuple(out)


def _pack(x: TensorType, dims: int, sizes: tuple, channels: int) -> TensorType:
    return x.with_dims(*sizes, channels) if dims == 1 else x.with_dims(channels, *sizes)


# --- conv1d / conv2d -------------------------------------------------------------

CONV_WEIGHTS = WeightRoles(kernel=("weight",), bias=("bias",), onnx_ops=("Conv",))


def _conv_shape(dims: int, kind: str):
    def shape(p: ConvParams, x: TensorType) -> TensorType:
        channels = _known_channels(x, dims, kind)
        if channels % p.groups or p.filters % p.groups:
            raise ShapeError(
                f"groups={p.groups} must divide both the input channels ({channels}) and filters ({p.filters})",
                about_input=True,
            )
        return _pack(x, dims, window_sizes(p, x, dims, p.kernel, f"{kind} kernel"), p.filters)

    return shape


def _conv_count(dims: int):
    def count(p: ConvParams, x: TensorType, y: TensorType) -> Count:
        _, channels = _spatial(x, dims)
        weights = p.filters * (channels // p.groups) * prod(as_tuple(p.kernel, dims))
        return Count(weights + (p.filters if p.bias else 0))

    return count


def _conv_flops(dims: int):
    def flops(p: ConvParams, x: TensorType, y: TensorType) -> int:
        _, channels = _spatial(x, dims)
        out_positions = prod(d if isinstance(d, int) else 1 for d in _spatial(y, dims)[0])
        return out_positions * p.filters * (channels // p.groups) * prod(as_tuple(p.kernel, dims))

    return flops


def _conv_build(dims: int):
    def build(p: ConvParams, x: TensorType, y: TensorType):
        from ..modules.conv import conv

        _, channels = _spatial(x, dims)
        return conv(dims, channels, p.filters, as_tuple(p.kernel, dims), as_tuple(p.stride, dims), p.pad,
                    as_tuple(p.dilation, dims), p.groups, p.bias)

    return build


register(LayerKind(
    name="conv2d", aliases=("conv",), params=ConvParams, slots=(Slot("filters"), Slot("kernel", "dims")),
    shape=_conv_shape(2, "conv2d"), count=_conv_count(2), flops=_conv_flops(2), build=_conv_build(2),
    weights=CONV_WEIGHTS, category="convolution", example="conv 6x5x5 relu",
    doc="2d convolution on a CxHxW image: filters, kernel (`6x5x5` = 6 filters of 5x5), stride, "
        "pad=valid|same|N, dilation, groups, bias",
))

register(LayerKind(
    name="conv1d", params=Conv1dParams, slots=(Slot("filters"), Slot("kernel", "dims")),
    shape=_conv_shape(1, "conv1d"), count=_conv_count(1), flops=_conv_flops(1), build=_conv_build(1),
    weights=CONV_WEIGHTS, category="convolution", example="conv1d 128 5 relu",
    doc="1d convolution along time on a TxF sequence (Keras' Conv1D): returns T'xfilters; "
        "stride, pad=valid|same|N, dilation, groups, bias",
))


# --- transposed convolutions (upsampling by a learned kernel) ----------------------

class ConvTransposeParams(ConvParams):
    output_padding: NonNeg | tuple[NonNeg, ...] = 0

    @model_validator(mode="after")
    def _output_padding(self):
        _check_tuple("output_padding", self.output_padding, self.DIMS)
        if self.pad == "same" and self.output_padding != 0:
            raise ValueError("pad=same already gives stride x the input size: leave output_padding out")
        for extra, stride, dilation in zip(*(as_tuple(v, self.DIMS) for v in
                                            (self.output_padding, self.stride, self.dilation))):
            if extra >= max(stride, dilation):
                raise ValueError(f"output_padding must be smaller than the stride or the dilation, got {extra}")
        return self


class ConvTranspose1dParams(ConvTransposeParams):
    DIMS: ClassVar[int] = 1


def transposed_sizes(p: ConvTransposeParams, x: TensorType, dims: int, kind: str) -> tuple:
    """Output spatial sizes of a transposed conv: (n - 1) * stride - 2 * pad + dilation * (kernel - 1)
    + output_padding + 1 (PyTorch's formula); pad=same gives n * stride, as Keras."""
    sizes, _ = _spatial(x, dims)
    kernel, stride, dilation, extra = (as_tuple(v, dims) for v in (p.kernel, p.stride, p.dilation, p.output_padding))
    pad = (0,) * dims if p.pad in ("valid", "same") else as_tuple(p.pad, dims)
    out = []
    for axis, size in enumerate(sizes):
        if not isinstance(size, int):
            out.append(size)
        elif p.pad == "same":
            out.append(size * stride[axis])
        else:
            length = (size - 1) * stride[axis] - 2 * pad[axis] + dilation[axis] * (kernel[axis] - 1) + extra[axis] + 1
            if length < 1:
                axis_name = ("time",) if dims == 1 else ("height", "width")
                raise ShapeError(f"{kind} pad={_x(p.pad)} is too large for its input {x}: the {axis_name[axis]} "
                                 f"would be {length}", "use a smaller pad", about_input=True)
            out.append(length)
    return tuple(out)


def _transpose_shape(dims: int, kind: str):
    def shape(p: ConvTransposeParams, x: TensorType) -> TensorType:
        channels = _known_channels(x, dims, kind)
        if channels % p.groups or p.filters % p.groups:
            raise ShapeError(
                f"groups={p.groups} must divide both the input channels ({channels}) and filters ({p.filters})",
                about_input=True,
            )
        return _pack(x, dims, transposed_sizes(p, x, dims, kind), p.filters)

    return shape


def _transpose_flops(dims: int):
    def flops(p: ConvTransposeParams, x: TensorType, y: TensorType) -> int:
        sizes, channels = _spatial(x, dims)
        in_positions = prod(d if isinstance(d, int) else 1 for d in sizes)
        return in_positions * channels * (p.filters // p.groups) * prod(as_tuple(p.kernel, dims))

    return flops


def _transpose_build(dims: int):
    def build(p: ConvTransposeParams, x: TensorType, y: TensorType):
        from ..modules.conv import conv_transpose

        _, channels = _spatial(x, dims)
        return conv_transpose(dims, channels, p.filters, as_tuple(p.kernel, dims), as_tuple(p.stride, dims), p.pad,
                              as_tuple(p.output_padding, dims), as_tuple(p.dilation, dims), p.groups, p.bias)

    return build


# The same count as a conv: in_channels * filters / groups * kernel area (+ filters). The
# weight is laid out input first, (in, filters / groups, *kernel): its fans are PyTorch's and
# Keras' for a transposed conv, which count the filters as the fan-in.
TRANSPOSE_WEIGHTS = WeightRoles(kernel=("weight",), bias=("bias",), onnx_ops=("ConvTranspose",))

register(LayerKind(
    name="conv_transpose", aliases=("conv_transpose2d", "deconv"), params=ConvTransposeParams,
    slots=(Slot("filters"), Slot("kernel", "dims")), shape=_transpose_shape(2, "conv_transpose"),
    count=_conv_count(2), flops=_transpose_flops(2), build=_transpose_build(2), weights=TRANSPOSE_WEIGHTS,
    category="convolution", example="conv_transpose 64 4x4 stride=2 pad=1",
    doc="transposed 2d convolution (PyTorch's ConvTranspose2d; a learned upsampling, as in DCGAN and U-Net) on a "
        "CxHxW image: each size n becomes (n-1)*stride - 2*pad + dilation*(kernel-1) + output_padding + 1; "
        "pad=same gives n*stride (Keras' Conv2DTranspose); groups, bias",
))

register(LayerKind(
    name="conv_transpose1d", params=ConvTranspose1dParams, slots=(Slot("filters"), Slot("kernel", "dims")),
    shape=_transpose_shape(1, "conv_transpose1d"), count=_conv_count(1), flops=_transpose_flops(1),
    build=_transpose_build(1), weights=TRANSPOSE_WEIGHTS, category="convolution",
    example="conv_transpose1d 16 4 stride=2 pad=1",
    doc="transposed 1d convolution along time on a TxF sequence (Keras' Conv1DTranspose): returns T'xfilters "
        "with T' as conv_transpose computes it",
))


# --- depthwise and separable (MobileNet) ------------------------------------------

class DepthwiseParams(_ConvParams):
    multiplier: Pos = 1


def _depthwise_shape(p: DepthwiseParams, x: TensorType) -> TensorType:
    _known_channels(x, 2, "depthwise")
    return x.with_dims(x.dims[0] * p.multiplier, *window_sizes(p, x, 2, p.kernel, "depthwise kernel"))


def _depthwise_count(p: DepthwiseParams, x: TensorType, y: TensorType) -> Count:
    out = x.dims[0] * p.multiplier
    return Count(out * prod(as_tuple(p.kernel, 2)) + (out if p.bias else 0))


def _depthwise_flops(p: DepthwiseParams, x: TensorType, y: TensorType) -> int:
    return y.numel_estimate() * prod(as_tuple(p.kernel, 2))


def _depthwise_build(p: DepthwiseParams, x: TensorType, y: TensorType):
    from ..modules.conv import conv

    channels = x.dims[0]
    return conv(2, channels, channels * p.multiplier, as_tuple(p.kernel, 2), as_tuple(p.stride, 2), p.pad,
                as_tuple(p.dilation, 2), channels, p.bias)


register(LayerKind(
    name="depthwise", aliases=("depthwise_conv2d", "dwconv"), params=DepthwiseParams,
    slots=(Slot("kernel", "dims"),), shape=_depthwise_shape, count=_depthwise_count,
    flops=_depthwise_flops, build=_depthwise_build, weights=CONV_WEIGHTS, category="convolution",
    example="depthwise 3x3 stride=2 pad=same",
    doc="depthwise 2d convolution: one kernel per input channel (x multiplier), as in MobileNet",
))


class SeparableParams(DepthwiseParams):
    filters: Pos


def _separable_shape(p: SeparableParams, x: TensorType) -> TensorType:
    _known_channels(x, 2, "separable")
    return x.with_dims(p.filters, *window_sizes(p, x, 2, p.kernel, "separable kernel"))


def _separable_count(p: SeparableParams, x: TensorType, y: TensorType) -> Count:
    mid = x.dims[0] * p.multiplier
    return Count(mid * prod(as_tuple(p.kernel, 2)) + mid * p.filters + (p.filters if p.bias else 0))


def _separable_flops(p: SeparableParams, x: TensorType, y: TensorType) -> int:
    positions = prod(d if isinstance(d, int) else 1 for d in y.dims[1:])  # a run-time length counts as 1
    mid = x.dims[0] * p.multiplier
    return positions * mid * prod(as_tuple(p.kernel, 2)) + positions * mid * p.filters


def _separable_build(p: SeparableParams, x: TensorType, y: TensorType):
    from ..modules.conv import SeparableConv2d

    return SeparableConv2d(x.dims[0], p.filters, as_tuple(p.kernel, 2), as_tuple(p.stride, 2), p.pad,
                           as_tuple(p.dilation, 2), p.multiplier, p.bias)


register(LayerKind(
    name="separable", aliases=("separable_conv2d", "sepconv"), params=SeparableParams,
    slots=(Slot("filters"), Slot("kernel", "dims")), shape=_separable_shape, count=_separable_count,
    flops=_separable_flops, build=_separable_build, category="convolution", example="separable 64 3x3 pad=same relu",
    weights=WeightRoles(kernel=("depthwise.weight", "pointwise.weight"), bias=("pointwise.bias",), onnx_ops=("Conv",)),
    doc="depthwise-separable convolution (Keras' SeparableConv2D): a depthwise kernel per channel, "
        "then a 1x1 pointwise conv; the pointwise conv alone carries the bias",
))


# --- pooling ---------------------------------------------------------------------

class PoolParams(LayerParams):
    size: Window = 2
    stride: Window | None = None  # defaults to the window size, as in Keras and PyTorch
    pad: Padding = "valid"
    ceil: bool = False

    @model_validator(mode="after")
    def _default_stride(self):
        if self.stride is None:
            object.__setattr__(self, "stride", self.size)
        return self


def _x(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _pool_shape(dims: int, kind: str):
    def shape(p: PoolParams, x: TensorType) -> TensorType:
        _require(x, dims, kind)
        _, channels = _spatial(x, dims)
        for name in ("size", "stride", "pad"):
            value = getattr(p, name)
            if isinstance(value, tuple) and len(value) not in (1, dims):
                wanted = "1 size" if dims == 1 else f"1 or {dims} sizes"
                raise ShapeError(f"{kind} {name} needs {wanted}, got {_x(value)}",
                                 f"write one size per axis of its {'sequence' if dims == 1 else 'image'}")
        if not isinstance(p.pad, str) and any(
                2 * pad > size for pad, size in zip(as_tuple(p.pad, dims), as_tuple(p.size, dims))):
            raise ShapeError(f"{kind} padding {_x(p.pad)} is more than half its window {_x(p.size)}",
                             "use pad=same, or a padding of at most half the window")
        return _pack(x, dims, window_sizes(p, x, dims, p.size, f"{kind} window"), channels)

    return shape


def _pool_build(dims: int, mode: str):
    def build(p: PoolParams, x: TensorType, y: TensorType):
        from ..modules.conv import Pool

        return Pool(dims, mode, as_tuple(p.size, dims), as_tuple(p.stride, dims), p.pad, p.ceil)

    return build


register(LayerKind(
    name="maxpool1d", params=PoolParams, slots=(Slot("size", "dims"),),
    shape=_pool_shape(1, "maxpool1d"), build=_pool_build(1, "max"), category="pooling", example="maxpool1d 2",
    doc="maximum over windows of a TxF sequence (along time); stride defaults to the window",
))

register(LayerKind(
    name="avgpool1d", params=PoolParams, slots=(Slot("size", "dims"),),
    shape=_pool_shape(1, "avgpool1d"), build=_pool_build(1, "avg"), category="pooling", example="avgpool1d 2",
    doc="average over windows of a TxF sequence (along time); stride defaults to the window; "
        "padding is left out of averages, as in Keras",
))

register(LayerKind(
    name="maxpool2d", aliases=("maxpool",), params=PoolParams, slots=(Slot("size", "dims"),),
    shape=_pool_shape(2, "maxpool2d"), build=_pool_build(2, "max"), category="pooling", example="maxpool 2",
    doc="maximum over windows of a CxHxW image; stride defaults to the window",
))

register(LayerKind(
    name="avgpool2d", aliases=("avgpool",), params=PoolParams, slots=(Slot("size", "dims"),),
    shape=_pool_shape(2, "avgpool2d"), build=_pool_build(2, "avg"), category="pooling", example="avgpool 2",
    doc="average over windows of a CxHxW image; stride defaults to the window; "
        "padding is left out of averages, as in Keras",
))


# --- global pooling --------------------------------------------------------------

class GlobalPoolParams(LayerParams):
    keepdims: bool = False  # keep the pooled axes with size 1: Cx1x1, 1xF


def _global_shape(p: GlobalPoolParams, x: TensorType) -> TensorType:
    require_float(x, "global pooling")
    if x.rank == 3:
        return x.with_dims(x.dims[0], 1, 1) if p.keepdims else x.with_dims(x.dims[0])
    if x.rank == 2:
        return x.with_dims(1, x.dims[1]) if p.keepdims else x.with_dims(x.dims[1])
    raise ShapeError(f"global pooling expects an image CxHxW or a sequence TxF, got {describe(x)}", about_input=True)


def _global_build(mode: str):
    def build(p, x: TensorType, y: TensorType):
        from ..modules.conv import GlobalPool

        return GlobalPool(mode, spatial_dims=(2, 3) if x.rank == 3 else (1,), keepdims=p.keepdims)

    return build


register(LayerKind(
    name="global_avgpool", aliases=("global_avgpool2d", "global_avgpool1d"), params=GlobalPoolParams,
    shape=_global_shape, build=_global_build("avg"), category="pooling", example="global_avgpool",
    doc="average over all positions: CxHxW to C, TxF to F; keepdims=true keeps the pooled axes with size 1 "
        "(Cx1x1, 1xF), as a squeeze-and-excitation gate needs",
))

register(LayerKind(
    name="global_maxpool", aliases=("global_maxpool2d", "global_maxpool1d"), params=GlobalPoolParams,
    shape=_global_shape, build=_global_build("max"), category="pooling", example="global_maxpool",
    doc="maximum over all positions: CxHxW to C, TxF to F; keepdims=true keeps the pooled axes with size 1 "
        "(Cx1x1, 1xF)",
))

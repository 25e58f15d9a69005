"""Parameter-free functions, in the role of Keras' Lambda layers.

A .spec file never holds code, so the functions course material writes as
`Lambda(lambda x: ...)` are a small library of named layers instead:

    l2_normalize [axis]      x / max(||x||_2, 1e-12) along an axis (default the last)
    scale FACTOR             x * FACTOR
    clip [MIN] [MAX]         clamps into [MIN, MAX] (`clip 0 6`, `clip min=0`)
    permute ORDER            reorders the axes (`permute 1x0` swaps T and F of a TxF sequence)
    mean|sum|max [axis]      reduces one axis (default the last); keepdims=true keeps it as 1
    abs, square, sqrt, exp, log
                             elementwise (sqrt and log give NaN below 0, log gives -inf at 0)
    expand_dims [axis]       inserts a size-1 axis (default 0: TxF to 1xTxF, an image)
    squeeze AXIS             removes a size-1 axis
    slice [START] [END]      a range along an axis (default the channels of an image)
    channel_shuffle GROUPS   interleaves channel groups (ShuffleNet)

One axis rule everywhere: an axis (and every number of permute's order) counts from 0
over a sample's axes, the batch excluded; a negative axis counts from the end (-1 is
the last), as `softmax axis=` and `concat axis=` do. None of them holds parameters;
like activations they count no FLOPs. Anything beyond this library is a plugin layer
(`--plugin module`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from ..shapes import ShapeError, TensorType, describe, format_dims, known_size
from .base import LayerKind, LayerParams, Slot, register, require_float


def _check_axis(axis: int, x: TensorType, kind: str, extra: int = 0) -> int:
    """`axis` as an index from 0 into x's axes (x.rank + extra of them)."""
    rank = x.rank + extra
    if not -rank <= axis < rank:
        raise ShapeError(
            f"{kind} axis {axis} is out of range for {describe(x)}",
            f"a sample has {x.rank} axes, numbered 0 to {x.rank - 1} (or -1 for the last); the batch is not one of them"
            if not extra else f"use an axis from {-rank} to {rank - 1}",
            about_input=True,
        )
    return axis % rank


def _float_input(kind: str):
    def shape(p, x: TensorType) -> TensorType:
        require_float(x, kind)
        if x.rank == 0:
            raise ShapeError(f"{kind} needs an input with at least one axis")
        return x

    return shape


# --- l2_normalize ------------------------------------------------------------------

class AxisParams(LayerParams):
    axis: int = -1


def _l2_shape(p: AxisParams, x: TensorType) -> TensorType:
    require_float(x, "l2_normalize")
    _check_axis(p.axis, x, "l2_normalize")
    return x


def _l2_build(p: AxisParams, x: TensorType, y: TensorType):
    from ..modules.functions import L2Normalize

    return L2Normalize(_check_axis(p.axis, x, "l2_normalize"))


register(LayerKind(
    name="l2_normalize", aliases=("l2_norm",), params=AxisParams, slots=(Slot("axis"),),
    shape=_l2_shape, build=_l2_build, category="function", example="l2_normalize axis=-1",
    doc="divides by the L2 norm along an axis (default the last), x / max(||x||, 1e-12): unit-length "
        "embeddings as in FaceNet (Keras' K.l2_normalize in a Lambda)",
))


# --- scale -------------------------------------------------------------------------

class ScaleParams(LayerParams):
    factor: float


def _scale_build(p: ScaleParams, x: TensorType, y: TensorType):
    from ..modules.functions import Scale

    return Scale(p.factor)


register(LayerKind(
    name="scale", params=ScaleParams, slots=(Slot("factor"),),
    shape=_float_input("scale"), build=_scale_build, category="function", example="scale 0.5",
    doc="multiplies every value by a constant factor (not learned): `scale 0.00392` maps 0..255 pixels to 0..1",
))


# --- clip --------------------------------------------------------------------------

class ClipParams(LayerParams):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is None and self.max is None:
            raise ValueError("needs min=, max= or both, e.g. `clip 0 6`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"needs min <= max, got min={self.min}, max={self.max}")
        return self


def _clip_build(p: ClipParams, x: TensorType, y: TensorType):
    from ..modules.functions import Clip

    return Clip(p.min, p.max)


register(LayerKind(
    name="clip", aliases=("clamp",), params=ClipParams, slots=(Slot("min"), Slot("max")),
    shape=_float_input("clip"), build=_clip_build, category="function", example="clip 0 6",
    doc="clamps every value into [min, max]; either bound may be left out (`clip min=0`)",
))


# --- permute -----------------------------------------------------------------------

def _as_order(value):
    return (value,) if isinstance(value, int) and not isinstance(value, bool) else value


class PermuteParams(LayerParams):
    order: Annotated[tuple[Annotated[int, Field(ge=0)], ...], BeforeValidator(_as_order)] = Field(min_length=1)


def _permute_shape(p: PermuteParams, x: TensorType) -> TensorType:
    if sorted(p.order) != list(range(x.rank)):
        if sorted(p.order) == list(range(1, x.rank + 1)):  # Keras' Permute numbers axes from 1
            from_zero = format_dims(tuple(axis - 1 for axis in p.order))
            raise ShapeError(
                f"permute {format_dims(p.order)} numbers the axes from 1, as Keras' Permute does; "
                f"specc counts every axis from 0",
                f"write `permute {from_zero}` (the batch is not an axis)",
            )
        identity = format_dims(tuple(range(x.rank)))
        raise ShapeError(
            f"permute {format_dims(p.order)} is not an order of the {x.rank} axes of {describe(x)}",
            f"name each axis once, counting from 0 (the batch excluded): {identity} keeps the order"
            + (", `permute 1x0` swaps a sequence's T and F" if x.rank == 2 else ""),
            about_input=True,
        )
    return TensorType(tuple(x.dims[i] for i in p.order), x.dtype, x.vocab)


def _permute_build(p: PermuteParams, x: TensorType, y: TensorType):
    from ..modules.functions import Permute

    return Permute(tuple(axis + 1 for axis in p.order))


register(LayerKind(
    name="permute", aliases=("transpose",), params=PermuteParams, slots=(Slot("order", "dims"),),
    shape=_permute_shape, build=_permute_build, category="function", example="permute 1x0",
    doc="reorders the axes of each sample, counted from 0 like every axis (the batch stays first): "
        "`permute 1x0` turns TxF into FxT, `permute 1x2x0` turns CxHxW into HxWxC",
))


# --- mean / sum / max --------------------------------------------------------------

class ReduceParams(LayerParams):
    axis: int = -1
    keepdims: bool = False


def _reduce_shape(op: str):
    def shape(p: ReduceParams, x: TensorType) -> TensorType:
        require_float(x, op)
        axis = _check_axis(p.axis, x, op)
        if p.keepdims:
            return x.with_dims(*x.dims[:axis], 1, *x.dims[axis + 1:])
        if x.rank == 1:
            raise ShapeError(
                f"{op} over the only axis of {describe(x)} leaves one number per sample, not a tensor",
                "write keepdims=true to keep it as a vector of size 1", about_input=True,
            )
        return x.with_dims(*x.dims[:axis], *x.dims[axis + 1:])

    return shape


def _reduce_build(op: str):
    def build(p: ReduceParams, x: TensorType, y: TensorType):
        from ..modules.functions import Reduce

        return Reduce(op, _check_axis(p.axis, x, op), p.keepdims)

    return build


register(LayerKind(
    name="mean", aliases=("reduce_mean",), params=ReduceParams, slots=(Slot("axis"),), shape=_reduce_shape("mean"),
    build=_reduce_build("mean"), category="function", example="mean 0",
    doc="the average over one axis (default the last; `mean 0` averages a TxF sequence over time); "
        "keepdims=true keeps the axis with size 1",
))

register(LayerKind(
    name="sum", aliases=("reduce_sum",), params=ReduceParams, slots=(Slot("axis"),), shape=_reduce_shape("sum"),
    build=_reduce_build("sum"), category="function", example="sum 0",
    doc="the sum over one axis (default the last); keepdims=true keeps the axis with size 1",
))

register(LayerKind(
    name="max", aliases=("reduce_max",), params=ReduceParams, slots=(Slot("axis"),), shape=_reduce_shape("max"),
    build=_reduce_build("max"), category="function", example="max 0",
    doc="the maximum over one axis (default the last); keepdims=true keeps the axis with size 1",
))


# --- elementwise ---------------------------------------------------------------------

class NoParams(LayerParams):
    pass


def _elementwise_build(op: str):
    def build(p, x: TensorType, y: TensorType):
        from ..modules.functions import Elementwise

        return Elementwise(op)

    return build


register(LayerKind(
    name="abs", params=NoParams, shape=_float_input("abs"), build=_elementwise_build("abs"),
    category="function", example="abs", doc="the absolute value of every value",
))

register(LayerKind(
    name="square", params=NoParams, shape=_float_input("square"), build=_elementwise_build("square"),
    category="function", example="square", doc="the square of every value",
))

register(LayerKind(
    name="sqrt", params=NoParams, shape=_float_input("sqrt"), build=_elementwise_build("sqrt"),
    category="function", example="sqrt", doc="the square root of every value (NaN below 0)",
))

register(LayerKind(
    name="exp", params=NoParams, shape=_float_input("exp"), build=_elementwise_build("exp"),
    category="function", example="exp", doc="e to the power of every value",
))

register(LayerKind(
    name="log", params=NoParams, shape=_float_input("log"), build=_elementwise_build("log"),
    category="function", example="log", doc="the natural logarithm of every value (-inf at 0, NaN below)",
))


# --- expand_dims / squeeze -------------------------------------------------------------

class ExpandParams(LayerParams):
    axis: int = 0


def _expand_axis(p: ExpandParams, x: TensorType) -> int:
    return _check_axis(p.axis, x, "expand_dims", extra=1)


def _expand_shape(p: ExpandParams, x: TensorType) -> TensorType:
    axis = _expand_axis(p, x)
    dims = list(x.dims)
    dims.insert(axis, 1)
    return TensorType(tuple(dims), x.dtype, x.vocab)


def _expand_build(p: ExpandParams, x: TensorType, y: TensorType):
    from ..modules.functions import ExpandDims

    return ExpandDims(_expand_axis(p, x) + 1)


register(LayerKind(
    name="expand_dims", aliases=("unsqueeze",), params=ExpandParams, slots=(Slot("axis"),),
    shape=_expand_shape, build=_expand_build, category="function", example="expand_dims 0",
    doc="inserts an axis of size 1 (default axis 0: a TxF sequence becomes a 1xTxF one-channel image)",
))


class SqueezeParams(LayerParams):
    axis: int


def _squeeze_shape(p: SqueezeParams, x: TensorType) -> TensorType:
    axis = _check_axis(p.axis, x, "squeeze")
    if x.dims[axis] != 1:
        raise ShapeError(
            f"squeeze axis {p.axis} has size {x.dims[axis]} in {describe(x)}, not 1",
            "squeeze removes an axis of size 1 only; use mean, sum or max to reduce a larger one",
            about_input=True,
        )
    if x.rank == 1:
        raise ShapeError(f"squeeze would remove the only axis of {describe(x)}", about_input=True)
    return TensorType(x.dims[:axis] + x.dims[axis + 1:], x.dtype, x.vocab)


def _squeeze_build(p: SqueezeParams, x: TensorType, y: TensorType):
    from ..modules.functions import Squeeze

    return Squeeze(_check_axis(p.axis, x, "squeeze") + 1)


register(LayerKind(
    name="squeeze", params=SqueezeParams, slots=(Slot("axis"),), shape=_squeeze_shape, build=_squeeze_build,
    category="function", example="squeeze 0",
    doc="removes an axis of size 1 (`squeeze 0` turns a 1xTxF image back into a TxF sequence)",
))


# --- slice / channel_shuffle -----------------------------------------------------------

def merge_axis(axis: int | None, x: TensorType) -> int:
    """The axis `concat` and `slice` act on: `axis` from 0 (negative from the end) or, by
    default, the channels of an image and the last axis (features) of anything else."""
    if axis is None:
        return 0 if x.rank == 3 else x.rank - 1
    return axis % x.rank if -x.rank <= axis < x.rank else axis


class SliceParams(LayerParams):
    start: int = 0
    end: int | None = None
    axis: int | None = None  # default: channels of an image, the last axis otherwise


def _slice_range(p: SliceParams, x: TensorType) -> tuple[int, int, int]:
    """(axis, start, end) with start and end from 0, checked against the axis' size."""
    if p.axis is not None:
        _check_axis(p.axis, x, "slice")
    axis = merge_axis(p.axis, x)
    size = x.dims[axis]
    if not isinstance(size, int):
        raise ShapeError(f"slice along axis {axis} of {describe(x)} needs its size known", about_input=True)
    kept = range(size)[p.start:p.end]  # Python's slice rules: negatives count from the end, ends clamp
    start, end = kept.start, kept.stop
    if end <= start:
        shown = f"{p.start}" + (f" to {p.end}" if p.end is not None else " to the end")
        raise ShapeError(f"slice {shown} of axis {axis} (size {size}) of {x} is empty",
                         "start and end count from 0; a negative one counts from the end", about_input=True)
    return axis, start, end


def _slice_shape(p: SliceParams, x: TensorType) -> TensorType:
    axis, start, end = _slice_range(p, x)
    return TensorType(x.dims[:axis] + (end - start,) + x.dims[axis + 1:], x.dtype, x.vocab)


def _slice_build(p: SliceParams, x: TensorType, y: TensorType):
    from ..modules.functions import Slice

    axis, start, end = _slice_range(p, x)
    return Slice(axis + 1, start, end)


register(LayerKind(
    name="slice", params=SliceParams, slots=(Slot("start"), Slot("end")), shape=_slice_shape, build=_slice_build,
    category="function", example="slice 0 2",
    doc="keeps positions start to end (end excluded; negative ones count from the end) along an axis, by default "
        "the channels of an image and the features otherwise: `slice end=58` and `slice start=58` split "
        "ShuffleNet's 116 channels in two",
))


class ShuffleParams(LayerParams):
    groups: Annotated[int, Field(gt=0)]


def _shuffle_shape(p: ShuffleParams, x: TensorType) -> TensorType:
    require_float(x, "channel_shuffle")
    if x.rank != 3:
        raise ShapeError(f"channel_shuffle expects an image CxHxW, got {describe(x)}", about_input=True)
    if known_size(x, 0, "channel_shuffle", "channels") % p.groups:
        raise ShapeError(f"channel_shuffle groups={p.groups} must divide the {x.dims[0]} channels of {x}",
                         about_input=True)
    return x


def _shuffle_build(p: ShuffleParams, x: TensorType, y: TensorType):
    from ..modules.functions import ChannelShuffle

    return ChannelShuffle(p.groups)


register(LayerKind(
    name="channel_shuffle", params=ShuffleParams, slots=(Slot("groups"),), shape=_shuffle_shape,
    build=_shuffle_build, category="function", example="channel_shuffle 3",
    doc="interleaves G groups of channels (ShuffleNet, Zhang et al. 2018): channels seen as GxC/G are transposed "
        "to C/GxG, so every group gets channels of every other",
))

"""Resizing along the spatial axes: upsample, pad and crop.

They act on the height and width of a CxHxW image, or the time axis of a TxF
sequence (Keras' UpSampling1D/2D, ZeroPadding1D/2D, Cropping1D/2D), never on channels
or features. None holds parameters; like pooling they count no FLOPs.

Amounts (`pad 1`, `pad 1x2`, `crop [0, 1, 0, 1]`) are one number for every side, one
per axis (both sides of it: height then width), or two per axis (before and after,
axis by axis: top, bottom, left, right).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from ..shapes import ShapeError, TensorType, describe, format_dims
from .base import LayerKind, LayerParams, Slot, register, require_float

Pos = Annotated[int, Field(gt=0)]
NonNeg = Annotated[int, Field(ge=0)]
Sizes = Union[Pos, tuple[Pos, ...]]
Amounts = Union[NonNeg, tuple[NonNeg, ...]]


def spatial_axes(x: TensorType, kind: str) -> tuple[int, ...]:
    """The axes (of a sample) a resizing layer acts on: H and W of an image, T of a sequence."""
    require_float(x, kind)
    if x.rank == 3:
        return (1, 2)
    if x.rank == 2:
        return (0,)
    raise ShapeError(f"{kind} expects an image CxHxW or a sequence TxF, got {describe(x)}", about_input=True)


def _per_axis(values, axes: tuple[int, ...], kind: str, what: str) -> tuple:
    """`values` (one number or one per axis) as one per axis."""
    values = values if isinstance(values, tuple) else (values,)
    if len(values) == 1:
        return values * len(axes)
    if len(values) != len(axes):
        raise ShapeError(f"{kind} {what} {format_dims(values)} needs 1 or {len(axes)} sizes for "
                         f"{'an image (height, width)' if len(axes) == 2 else 'a sequence (time)'}")
    return values


def side_amounts(amounts, axes: tuple[int, ...], kind: str) -> tuple[tuple[int, int], ...]:
    """(before, after) per axis from one number, one per axis, or two per axis."""
    values = amounts if isinstance(amounts, tuple) else (amounts,)
    n = len(axes)
    if len(values) == 1:
        return ((values[0], values[0]),) * n
    if len(values) == n:
        return tuple((v, v) for v in values)
    if len(values) == 2 * n:
        return tuple((values[2 * i], values[2 * i + 1]) for i in range(n))
    sides = "top, bottom, left, right" if n == 2 else "before, after"
    raise ShapeError(f"{kind} needs 1, {n} or {2 * n} amounts, got {len(values)} ({format_dims(values)})",
                     f"one for every side, one per axis, or two per axis: [{sides}]")


def _resized(x: TensorType, sizes: dict[int, object]) -> TensorType:
    return x.with_dims(*(sizes.get(axis, d) for axis, d in enumerate(x.dims)))


# --- upsample ----------------------------------------------------------------------

class UpsampleParams(LayerParams):
    factor: Sizes | None = 2
    size: Sizes | None = None
    mode: Literal["nearest", "bilinear", "linear"] = "nearest"
    align_corners: bool = False

    @model_validator(mode="after")
    def _one_target(self):
        if self.size is not None:
            if "factor" in self.model_fields_set:
                raise ValueError("takes a factor or a size=, not both")
            object.__setattr__(self, "factor", None)
        if self.align_corners and self.mode == "nearest":
            raise ValueError("align_corners= applies to mode=bilinear (images) or mode=linear (sequences) only")
        return self


def _upsample_sizes(p: UpsampleParams, x: TensorType) -> dict[int, object]:
    axes = spatial_axes(x, "upsample")
    wanted = "bilinear" if len(axes) == 2 else "linear"
    if p.mode not in ("nearest", wanted):
        raise ShapeError(f"upsample mode={p.mode} does not apply to {describe(x)}",
                         f"use mode=nearest or mode={wanted}", about_input=True)
    if p.size is not None:
        return dict(zip(axes, _per_axis(p.size, axes, "upsample", "size")))
    factors = _per_axis(p.factor, axes, "upsample", "factor")
    return {a: x.dims[a] * f if isinstance(x.dims[a], int) else x.dims[a] for a, f in zip(axes, factors)}


def _upsample_shape(p: UpsampleParams, x: TensorType) -> TensorType:
    return _resized(x, _upsample_sizes(p, x))


def _upsample_build(p: UpsampleParams, x: TensorType, y: TensorType):
    from ..modules.spatial import Upsample

    axes = spatial_axes(x, "upsample")
    if p.size is not None:
        return Upsample(p.mode, p.align_corners, size=tuple(y.dims[a] for a in axes))
    factors = _per_axis(p.factor, axes, "upsample", "factor")
    return Upsample(p.mode, p.align_corners, factor=tuple(float(f) for f in factors))


register(LayerKind(
    name="upsample", aliases=("upsampling",), params=UpsampleParams, slots=(Slot("factor", "dims"),),
    shape=_upsample_shape, build=_upsample_build, category="resizing", example="upsample 2",
    doc="enlarges the height and width of a CxHxW image (or the time axis of a TxF sequence) by a whole factor "
        "(`upsample 2x3`: per axis) or to size=HxW: mode=nearest (repeats values, Keras' UpSampling2D) "
        "or bilinear (linear on a sequence), align_corners= as PyTorch's interpolate",
))


# --- pad ---------------------------------------------------------------------------

class PadParams(LayerParams):
    amount: Amounts
    mode: Literal["constant", "reflect", "replicate"] = "constant"
    value: float = 0.0

    @model_validator(mode="after")
    def _value_is_constant(self):
        if self.value != 0.0 and self.mode != "constant":
            raise ValueError(f"value= is what mode=constant pads with; mode={self.mode} takes none")
        return self


def _pad_sides(p: PadParams, x: TensorType) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    axes = spatial_axes(x, "pad")
    sides = side_amounts(p.amount, axes, "pad")
    if p.mode == "reflect":
        for axis, (before, after) in zip(axes, sides):
            size = x.dims[axis]
            if isinstance(size, int) and max(before, after) >= size:
                raise ShapeError(f"pad mode=reflect needs amounts smaller than the size they mirror: "
                                 f"{max(before, after)} on axis {axis} of {x}", about_input=True)
    return axes, sides


def _pad_shape(p: PadParams, x: TensorType) -> TensorType:
    axes, sides = _pad_sides(p, x)
    return _resized(x, {a: x.dims[a] + sum(s) if isinstance(x.dims[a], int) else x.dims[a]
                        for a, s in zip(axes, sides)})


def _pad_build(p: PadParams, x: TensorType, y: TensorType):
    from ..modules.spatial import Pad

    _, sides = _pad_sides(p, x)
    return Pad(tuple(sides), p.mode, p.value)


register(LayerKind(
    name="pad", params=PadParams, slots=(Slot("amount", "dims"),),
    shape=_pad_shape, build=_pad_build, category="resizing", example="pad 1",
    doc="pads the height and width of a CxHxW image (or the time axis of a TxF sequence): `pad 1` every side, "
        "`pad 1x2` per axis, `pad [0, 1, 0, 1]` top, bottom, left, right; mode=constant (value=0) | reflect | "
        "replicate",
))


# --- crop --------------------------------------------------------------------------

class CropParams(LayerParams):
    amount: Amounts | None = None
    size: Sizes | None = None

    @model_validator(mode="after")
    def _one_target(self):
        if (self.amount is None) == (self.size is None):
            raise ValueError("takes the amounts to cut (`crop 4`) or the size= to keep (`crop size=64x64`), "
                             "one of them")
        return self


def crop_sides(p: CropParams, x: TensorType) -> tuple[tuple[int, int], ...]:
    """(before, after) to cut per spatial axis; size= cuts the middle out, the odd row at the end."""
    axes = spatial_axes(x, "crop")
    if p.size is not None:
        sides = []
        for axis, keep in zip(axes, _per_axis(p.size, axes, "crop", "size")):
            size = x.dims[axis]
            if not isinstance(size, int):
                raise ShapeError(f"crop size= needs the length known, got {describe(x)}", "cut amounts: `crop 2`",
                                 about_input=True)
            if keep > size:
                raise ShapeError(f"crop size {format_dims(p.size if isinstance(p.size, tuple) else (p.size,))} "
                                 f"is larger than its input {x}", about_input=True)
            sides.append(((size - keep) // 2, size - keep - (size - keep) // 2))
        return tuple(sides)
    sides = side_amounts(p.amount, axes, "crop")
    for axis, (before, after) in zip(axes, sides):
        size = x.dims[axis]
        if isinstance(size, int) and before + after >= size:
            raise ShapeError(f"crop of {before} + {after} leaves nothing of axis {axis} of {x}", about_input=True)
    return sides


def _crop_shape(p: CropParams, x: TensorType) -> TensorType:
    axes = spatial_axes(x, "crop")
    sides = crop_sides(p, x)
    return _resized(x, {a: x.dims[a] - sum(s) if isinstance(x.dims[a], int) else x.dims[a]
                        for a, s in zip(axes, sides)})


def _crop_build(p: CropParams, x: TensorType, y: TensorType):
    from ..modules.spatial import Crop

    return Crop(crop_sides(p, x))


register(LayerKind(
    name="crop", params=CropParams, slots=(Slot("amount", "dims"),),
    shape=_crop_shape, build=_crop_build, category="resizing", example="crop 2",
    doc="cuts the borders of a CxHxW image (or the ends of a TxF sequence), the amounts as pad takes them "
        "(`crop 4`, `crop 1x2`, `crop [0, 1, 0, 1]`), or keeps the middle size=HxW: U-Net's copy-and-crop",
))

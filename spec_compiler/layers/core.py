"""Core layers: dense, flatten, reshape, dropout."""

from __future__ import annotations

from math import prod
from typing import Annotated

from pydantic import Field

from ..options import WeightOptions
from ..shapes import ShapeError, TensorType, describe, format_dims, known_size
from .base import ActivationName, Count, LayerKind, LayerParams, Slot, WeightRoles, register, require_float

PositiveInt = Annotated[int, Field(gt=0)]


# --- dense -----------------------------------------------------------------------

class DenseParams(LayerParams, WeightOptions):
    units: PositiveInt
    activation: ActivationName | None = None
    bias: bool = True
    # `tie=wte`: the weight IS the named embedding's table (GPT-2's head): inference checks
    # the shapes and counts it once, at the table; the builder shares the one Parameter.
    tie: str | None = None


def _dense_shape(p: DenseParams, x: TensorType) -> TensorType:
    require_float(x, "dense")
    if x.rank >= 3:
        raise ShapeError(
            f"dense expects a flat input, got {x}", "add `flatten` before it, or global pooling",
            about_input=True,
        )
    known_size(x, -1, "dense")
    return x.with_dims(*x.dims[:-1], p.units)


def _dense_count(p: DenseParams, x: TensorType, y: TensorType) -> Count:
    return Count(x.dims[-1] * p.units + (p.units if p.bias else 0))


def _dense_flops(p: DenseParams, x: TensorType, y: TensorType) -> int:
    steps = prod(d if isinstance(d, int) else 1 for d in x.dims[:-1])
    return steps * x.dims[-1] * p.units


def _dense_build(p: DenseParams, x: TensorType, y: TensorType):
    from torch import nn

    return nn.Linear(x.dims[-1], p.units, bias=p.bias)


register(LayerKind(
    name="dense", aliases=("linear_layer", "fc"), params=DenseParams, slots=(Slot("units"),),
    shape=_dense_shape, count=_dense_count, flops=_dense_flops, build=_dense_build,
    weights=WeightRoles(kernel=("weight",), bias=("bias",), onnx_ops=("Gemm", "MatMul")),
    doc="fully connected layer; on a TxF sequence it applies to every time step, as in Keras",
    example="dense 120 relu",
))


# --- flatten ---------------------------------------------------------------------

class FlattenParams(LayerParams):
    pass


def _flatten_shape(p, x: TensorType) -> TensorType:
    if x.rank == 0:
        raise ShapeError("flatten needs an input with at least one dimension")
    if not x.is_static:
        raise ShapeError(
            f"flatten needs every size known, got {describe(x)}",
            "use global pooling or attention pooling over a sequence of unknown length",
            about_input=True,
        )
    return TensorType((prod(x.dims),), x.dtype, x.vocab)


def _flatten_build(p, x, y):
    from torch import nn

    return nn.Flatten()


register(LayerKind(
    name="flatten", params=FlattenParams, shape=_flatten_shape, build=_flatten_build,
    doc="flattens each sample to a vector (CxHxW to C*H*W)", example="flatten",
))


# --- reshape ---------------------------------------------------------------------

class ReshapeParams(LayerParams):
    shape: tuple[Annotated[int, Field(ge=-1)], ...] = Field(min_length=1)


def _reshape_target(p: ReshapeParams, x: TensorType) -> tuple[int, ...]:
    if not x.is_static:
        raise ShapeError(f"reshape needs every size known, got {describe(x)}", about_input=True)
    target = list(p.shape)
    if target.count(-1) > 1 or 0 in target:
        raise ShapeError(f"reshape target {format_dims(p.shape)} may hold at most one -1 and no 0")
    total = prod(x.dims)
    if -1 in target:
        known = prod(d for d in target if d != -1)
        if total % known:
            raise ShapeError(f"reshape cannot fit {total} elements ({x}) into {format_dims(p.shape)}", about_input=True)
        target[target.index(-1)] = total // known
    if prod(target) != total:
        raise ShapeError(
            f"reshape to {format_dims(tuple(target))} ({prod(target)} elements) "
            f"from {x} ({total} elements): the element counts differ",
            "the product of the target sizes must equal the input's; -1 lets one size be inferred",
            about_input=True,
        )
    return tuple(target)


def _reshape_shape(p: ReshapeParams, x: TensorType) -> TensorType:
    return TensorType(_reshape_target(p, x), x.dtype, x.vocab)


def _reshape_build(p, x, y):
    from ..modules.functions import Reshape

    return Reshape(y.dims)


register(LayerKind(
    name="reshape", params=ReshapeParams, slots=(Slot("shape", "dims"),), shape=_reshape_shape,
    build=_reshape_build, doc="reshapes each sample (the batch is kept); one size may be -1",
    example="reshape 16x25",
))


# --- dropout ---------------------------------------------------------------------

class DropoutParams(LayerParams):
    rate: Annotated[float, Field(ge=0, lt=1)]


def _dropout_build(p, x, y):
    from torch import nn

    return nn.Dropout(p.rate)


def _identity_shape(p, x: TensorType) -> TensorType:
    return x


register(LayerKind(
    name="dropout", params=DropoutParams, slots=(Slot("rate"),), shape=_identity_shape, build=_dropout_build,
    doc="zeroes a fraction `rate` of the inputs while training (inverted dropout, as Keras and PyTorch)",
    example="dropout 0.5",
))

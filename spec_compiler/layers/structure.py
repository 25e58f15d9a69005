"""Structural kinds: a block instance, residual, and parallel branches merged by
concat or add. Their bodies are inferred by the engine; these rules combine them."""

from __future__ import annotations

from dataclasses import replace

from ..shapes import ShapeError, TensorType, describe
from .base import BRANCHES, GROUP, MAIN_AND_SHORTCUT, InferBody, LayerKind, LayerParams, register


class GroupParams(LayerParams):
    pass


def _group_shape(p, x: TensorType, infer: InferBody) -> TensorType:
    return infer(0, x).output


def _group_build(p, x, y, children):
    (body,) = children
    return body


register(LayerKind(
    name="group", aliases=("sequential",), params=GroupParams, shape=_group_shape, build=_group_build,
    layout=GROUP, category="structure", example="group { conv 64 3x3 pad=same -> relu }",
    doc="a named sub-stack; every use of a block becomes one (its layers nest under its name)",
))


class ResidualParams(LayerParams):
    pass


def _residual_shape(p, x: TensorType, infer: InferBody) -> TensorType:
    main = infer(0, x).output
    shortcut = infer(1, x).output
    if main.dims != shortcut.dims:
        if shortcut.dims == x.dims:
            raise ShapeError(
                f"residual body changes the shape from {x} to {main}, so its input cannot be added to it",
                "add a projection inside the residual: `shortcut { conv C 1x1 stride=S }`, "
                "with C and S matching the body",
            )
        raise ShapeError(
            f"residual body gives {main} but its shortcut gives {shortcut}: they must match to be added",
            "make the shortcut's conv match the body: the same number of filters and the same stride",
            body=1,
        )
    return main


def _residual_build(p, x, y, children):
    from ..modules.structure import Residual

    main, shortcut = children
    return Residual(main, shortcut)


register(LayerKind(
    name="residual", params=ResidualParams, shape=_residual_shape, build=_residual_build,
    layout=MAIN_AND_SHORTCUT, category="structure", example="residual { conv 64 3x3 pad=same -> batchnorm -> relu }",
    doc="adds its input (or `shortcut { ... }`, a projection) to the output of its body (He et al. 2016)",
))


class ConcatParams(LayerParams):
    axis: int | None = None  # default: channels of an image, features otherwise


def _concat_axis(p: ConcatParams, x: TensorType) -> int:
    if p.axis is None:
        return 0 if x.rank == 3 else x.rank - 1
    return p.axis % x.rank if -x.rank <= p.axis < x.rank else p.axis


def _concat_shape(p: ConcatParams, x: TensorType, infer: InferBody) -> TensorType:
    outputs = [infer(i, x).output for i in range(infer.bodies)]
    first = outputs[0]
    if any(o.rank != first.rank for o in outputs):
        raise ShapeError("concat branches give different ranks: " + ", ".join(describe(o) for o in outputs))
    axis = _concat_axis(p, first)
    if not 0 <= axis < first.rank:
        raise ShapeError(f"concat axis {p.axis} is out of range for rank-{first.rank} outputs")
    for index, other in enumerate(outputs[1:], start=2):
        for dim in range(first.rank):
            if dim != axis and first.dims[dim] != other.dims[dim]:
                along = "channels" if first.rank == 3 and axis == 0 else f"axis {axis}"
                raise ShapeError(
                    f"concat branches must agree on every size except {along}: branch 1 gives {first}, "
                    f"branch {index} gives {other}",
                    "give every branch the same spatial size (pad=same, equal strides)",
                    body=index - 1,
                )
    joined = list(first.dims)
    sizes = [o.dims[axis] for o in outputs]
    joined[axis] = sum(sizes) if all(isinstance(s, int) for s in sizes) else "?"
    return first.with_dims(*joined)


def _concat_build(p, x, y, children):
    from ..modules.structure import Concat

    return Concat(children, dim=_concat_axis(p, y) + 1)


register(LayerKind(
    name="concat", params=ConcatParams, shape=_concat_shape, build=_concat_build,
    layout=replace(BRANCHES, merge="concat"), category="structure",
    example="concat { branch { conv 64 1x1 }; branch { conv 32 3x3 pad=same } }",
    doc="runs each `branch { }` on the same input and concatenates the outputs "
        "(along channels of an image, features otherwise; `axis=` to choose), as in Inception",
))


class AddParams(LayerParams):
    pass


def _add_shape(p, x: TensorType, infer: InferBody) -> TensorType:
    outputs = [infer(i, x).output for i in range(infer.bodies)]
    for index, other in enumerate(outputs[1:], start=2):
        if other.dims != outputs[0].dims:
            raise ShapeError(
                f"add branches give different shapes: branch 1 gives {outputs[0]}, branch {index} gives {other}",
                "every branch of an add must produce the same shape",
                body=index - 1,
            )
    return outputs[0]


def _add_build(p, x, y, children):
    from ..modules.structure import Add

    return Add(children)


register(LayerKind(
    name="add", params=AddParams, shape=_add_shape, build=_add_build,
    layout=replace(BRANCHES, merge="add"), category="structure",
    example="add { branch { conv 64 3x3 pad=same }; branch { conv 64 1x1 } }",
    doc="runs each `branch { }` on the same input and adds the outputs elementwise",
))

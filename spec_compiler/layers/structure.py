"""Structural kinds: a block instance, residual, and parallel branches merged by
concat or elementwise (add, multiply, maximum, minimum, average, broadcasting size-1
axes). Their bodies are inferred by the engine; these rules combine them."""

from __future__ import annotations

from dataclasses import replace

from ..lengths import differing_lengths, joined_length
from ..shapes import ShapeError, TensorType, describe, format_dims
from .base import BRANCHES, GROUP, MAIN_AND_SHORTCUT, InferBody, LayerKind, LayerParams, register
from .functions import merge_axis


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


def _refuse_arithmetic_on_ids(kind: str, outputs: list[TensorType], names: tuple[str, ...] = ()) -> None:
    """Token ids are labels: their sum is no id of the vocabulary (and PyTorch keeps it int64
    while the summary would say float)."""
    for index, output in enumerate(outputs):
        if output.dtype == "int":
            name = names[index] if names else f"branch {index + 1}"
            raise ShapeError(f"{kind} cannot combine token ids: {name} gives {describe(output)}",
                             f"turn the ids into vectors first: `embedding N` before the {kind} or inside {name}",
                             body=index)


def _residual_shape(p, x: TensorType, infer: InferBody) -> TensorType:
    main = infer(0, x).output
    shortcut = infer(1, x).output
    _refuse_arithmetic_on_ids("residual", [main, shortcut], ("its body", "its shortcut"))
    if main.dims != shortcut.dims:
        if shortcut.dims == x.dims and not infer.kinds[1]:  # no `shortcut { }`: the input itself
            raise ShapeError(
                f"residual body changes the shape from {x} to {main}, so its input cannot be added to it"
                f"{differing_lengths(x, main)}",
                "add a projection inside the residual: `shortcut { conv C 1x1 stride=S }`, "
                "with C and S matching the body",
            )
        raise ShapeError(
            f"residual body gives {main} but its shortcut gives {shortcut}: they must match to be added"
            f"{differing_lengths(main, shortcut)}",
            "make them match: the shortcut's conv with the body's filters and stride, and the body's "
            "convs keeping the size (`pad=same`, or pad=k//2 with an odd k)",
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


def _concat_shape(p: ConcatParams, x: TensorType, infer: InferBody) -> TensorType:
    outputs = [infer(i, x).output for i in range(infer.bodies)]
    first = outputs[0]
    ids = [o.dtype == "int" for o in outputs]
    if any(ids) and not all(ids):
        index = ids.index(not ids[0])
        raise ShapeError(f"concat mixes token ids and float features: branch 1 gives {describe(first)}, "
                         f"branch {index + 1} gives {describe(outputs[index])}",
                         "give every branch the same kind of data: `embedding N` turns ids into vectors",
                         body=index)
    if any(o.rank != first.rank for o in outputs):
        raise ShapeError("concat branches give different ranks: " + ", ".join(describe(o) for o in outputs))
    axis = merge_axis(p.axis, first)
    if not 0 <= axis < first.rank:
        raise ShapeError(f"concat axis {p.axis} is out of range for the branches' outputs ({describe(first)})",
                         f"axes count from 0 over a sample's {first.rank} axes, the batch excluded (-1 is the last)")
    for index, other in enumerate(outputs[1:], start=2):
        for dim in range(first.rank):
            if dim != axis and first.dims[dim] != other.dims[dim]:
                along = "channels" if first.rank == 3 and axis == 0 else f"axis {axis}"
                raise ShapeError(
                    f"concat branches must agree on every size except {along}: branch 1 gives {first}, "
                    f"branch {index} gives {other}{differing_lengths(first, other)}",
                    "give every branch the same spatial size (pad=same, equal strides)" if along == "channels"
                    else f"give every branch the same size on every axis but {axis}",
                    body=index - 1,
                )
    joined = list(first.dims)
    sizes = [o.dims[axis] for o in outputs]
    joined[axis] = sum(sizes) if all(isinstance(s, int) for s in sizes) else joined_length(sizes)
    if all(ids):  # ids joined are still ids of the vocabularies'
        return TensorType(tuple(joined), "int", max(o.vocab or 0 for o in outputs) or None)
    return first.with_dims(*joined)


def _concat_build(p, x, y, children):
    from ..modules.structure import Concat

    return Concat(children, dim=merge_axis(p.axis, y) + 1)


register(LayerKind(
    name="concat", params=ConcatParams, shape=_concat_shape, build=_concat_build,
    layout=replace(BRANCHES, merge="concat"), category="structure",
    example="concat { branch { conv 64 1x1 }; branch { conv 32 3x3 pad=same } }",
    doc="runs each `branch { }` on the same input and concatenates the outputs "
        "(along channels of an image, features otherwise; `axis=` to choose), as in Inception",
))


class MergeParams(LayerParams):
    pass


def _broadcast_branches(kind: str, outputs: list[TensorType]) -> TensorType:
    """The shape the branches' outputs combine to elementwise. Sizes broadcast as in NumPy
    and PyTorch, axis by axis: equal, or 1 in one of them (a Cx1x1 gate scales a CxHxW
    image per channel). Ranks must be equal: right-aligning a vector C against CxHxW would
    silently pair C with the width."""
    dims = list(outputs[0].dims)
    for index, other in enumerate(outputs[1:], start=2):
        so_far = (f"branch 1 gives {outputs[0]}" if index == 2
                  else f"branches 1 to {index - 1} give {format_dims(tuple(dims))}")
        if other.rank != len(dims):
            pooled = other.rank < len(dims) and len(dims) == 3
            raise ShapeError(
                f"{kind} branches give different ranks: {so_far}, branch {index} gives {describe(other)}",
                "write `global_avgpool keepdims=true` to pool to Cx1x1, which broadcasts over CxHxW" if pooled else
                "broadcasting needs the same number of axes in every branch: reshape to size-1 axes, e.g. Cx1x1",
                body=index - 1,
            )
        for axis, (mine, theirs) in enumerate(zip(dims, other.dims)):
            if mine == theirs or theirs == 1:
                continue
            if mine == 1:
                dims[axis] = theirs
                continue
            raise ShapeError(
                f"{kind} branches do not broadcast: {so_far}, branch {index} gives {other} "
                f"(axis {axis}: {mine} and {theirs}){differing_lengths(outputs[0], other)}",
                "along each axis the sizes must be equal, or 1 in one branch (Cx1x1 times CxHxW scales each channel)",
                body=index - 1,
            )
    return outputs[0].with_dims(*dims)


def _merge_shape(kind: str):
    def shape(p, x: TensorType, infer: InferBody) -> TensorType:
        outputs = [infer(i, x).output for i in range(infer.bodies)]
        _refuse_arithmetic_on_ids(kind, outputs)
        return _broadcast_branches(kind, outputs)

    return shape


def _merge_build(op: str):
    def build(p, x, y, children):
        if op == "add":
            from ..modules.structure import Add

            return Add(children)
        from ..modules.structure import Merge

        return Merge(children, op)

    return build


MERGED = "; shapes broadcast (along each axis: equal sizes, or 1)"

register(LayerKind(
    name="add", params=MergeParams, shape=_merge_shape("add"), build=_merge_build("add"),
    layout=replace(BRANCHES, merge="add"), category="structure",
    example="add { branch { conv 64 3x3 pad=same }; branch { conv 64 1x1 } }",
    doc="runs each `branch { }` on the same input and adds the outputs elementwise" + MERGED,
))

register(LayerKind(
    name="multiply", params=MergeParams, shape=_merge_shape("multiply"), build=_merge_build("multiply"),
    layout=replace(BRANCHES, merge="multiply"), category="structure",
    example="multiply { branch { identity }; branch { global_avgpool keepdims=true -> conv 16 1x1 sigmoid } }",
    doc="runs each `branch { }` on the same input and multiplies the outputs elementwise "
        "(a squeeze-and-excitation gate: CxHxW times Cx1x1)" + MERGED,
))

register(LayerKind(
    name="maximum", params=MergeParams, shape=_merge_shape("maximum"), build=_merge_build("maximum"),
    layout=replace(BRANCHES, merge="maximum"), category="structure",
    example="maximum { branch { conv 64 3x3 pad=same }; branch { conv 64 1x1 } }",
    doc="runs each `branch { }` on the same input and keeps the elementwise maximum" + MERGED,
))

register(LayerKind(
    name="minimum", params=MergeParams, shape=_merge_shape("minimum"), build=_merge_build("minimum"),
    layout=replace(BRANCHES, merge="minimum"), category="structure",
    example="minimum { branch { conv 64 3x3 pad=same }; branch { conv 64 1x1 } }",
    doc="runs each `branch { }` on the same input and keeps the elementwise minimum" + MERGED,
))

register(LayerKind(
    name="average", params=MergeParams, shape=_merge_shape("average"), build=_merge_build("average"),
    layout=replace(BRANCHES, merge="average"), category="structure",
    example="average { branch { conv 64 3x3 pad=same }; branch { conv 64 1x1 } }",
    doc="runs each `branch { }` on the same input and averages the outputs elementwise" + MERGED,
))

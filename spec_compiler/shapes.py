"""Tensor types and the shape arithmetic shared by every conv and pool rule.

Shapes never include the batch, which is always symbolic. A dimension is an int,
or a str for a length only known at run time (`?` or a user's name such as `T`).
Layouts follow the brief: images channels-first (C, H, W), sequences (T, F),
token ids (T,), flat vectors (F,).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod
from typing import Literal, Union

Dim = Union[int, str]


class ShapeError(Exception):
    """A shape rule's complaint; inference attaches the layer's span to it."""

    def __init__(self, message: str, hint: str | None = None, about_input: bool = False,
                 body: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        # For structural kinds: the index of the body (`shortcut { }`, a `branch { }`)
        # at fault, so that the caret points at it rather than at the whole layer.
        self.body = body
        # True when the message names the incoming shape: inference then says
        # which earlier layer produced it.
        self.about_input = about_input


@dataclass(frozen=True)
class TensorType:
    """A tensor per sample: its sizes (ints, or names for run-time lengths) and element type."""

    dims: tuple[Dim, ...]
    dtype: Literal["float", "int"] = "float"
    vocab: int | None = None  # for integer token ids: their exclusive upper bound

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.dims)

    def with_dims(self, *dims: Dim) -> TensorType:
        return replace(self, dims=tuple(dims), dtype="float", vocab=None)

    def numel_estimate(self, dynamic_length: int = 1) -> int:
        """Elements per sample, counting each dynamic length as `dynamic_length`."""
        return prod(d if isinstance(d, int) else dynamic_length for d in self.dims)

    def __str__(self) -> str:
        return format_dims(self.dims)


def known_size(x: TensorType, axis: int, kind: str, what: str = "features") -> int:
    """The size a rule computes weights or FLOPs from (features, channels). Only a
    sequence's length may be unknown, but permute, expand_dims or a reduction can move
    that length to this axis, where no weight can be sized by it."""
    size = x.dims[axis]
    if not isinstance(size, int):
        raise ShapeError(f"{kind} needs a known number of {what}, got {size} (a length known only at run time) "
                         f"in its input {x}",
                         "a run-time length cannot size weights: permute it back to where it was, or declare a fixed length",
                         about_input=True)
    return size


def format_dims(dims: tuple[Dim, ...]) -> str:
    return "x".join(str(d) for d in dims) if dims else "scalar"


def describe(t: TensorType) -> str:
    """How a shape reads in an error message: `16x5x5 (an image, CxHxW)`."""
    kind = {1: "a vector", 2: "a sequence, TxF", 3: "an image, CxHxW", 4: "a sequence of images, TxCxHxW"}
    if t.dtype == "int":
        return f"{t} (token ids)"
    return f"{t} ({kind.get(t.rank, f'rank {t.rank}')})"


def as_tuple(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    if len(value) == 1:
        return tuple(value) * n
    return tuple(value)


def window_output(size: Dim, kernel: int, stride: int, padding: int | str, dilation: int = 1,
                  ceil_mode: bool = False, what: str = "kernel") -> Dim:
    """Output length of a conv or pool window along one axis (PyTorch's formula)."""
    effective = dilation * (kernel - 1) + 1
    if not isinstance(size, int):
        return size
    if padding == "same":
        return -(-size // stride)
    padded = size + 2 * padding
    if effective > padded:
        extra = f" (padded to {padded})" if padding else ""
        dil = f", dilated to {effective}" if dilation > 1 else ""
        raise ShapeError(
            f"{what} {kernel}{dil} is larger than its input {size}{extra}",
            "use a smaller window, pad=same, or fewer downsampling layers before this one",
        )
    if ceil_mode:
        out = -(-(padded - effective) // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return (padded - effective) // stride + 1

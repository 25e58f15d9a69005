"""Transformer inputs and outputs: positional embeddings, the class token and its pooling.

A transformer sees a sequence TxF (tokens after an `embedding`, or the patches of an
image turned into a sequence: `conv 768 16x16 stride=16 -> reshape 768x196 -> permute
2x1`), and attention alone does not know the order of its steps:

- `positional_embedding` adds a vector per position: learned (BERT, GPT-2, ViT; a table
  of max_length x F, initialized N(0, 0.02)) or sinusoidal (Vaswani et al. 2017: no
  parameters, computed for the length at hand, so any length works).
- `class_token` puts a learned vector before the first step (BERT's [CLS], ViT's class
  token; zeros at first, as torchvision's): TxF becomes (T+1)xF.
- `class_pool` keeps the first step, where class_token put its token: TxF becomes F
  (ViT's head reads it after the encoder).

Sizes: a sequence of run-time length keeps it (T+1 of an unknown T is shown as the same
name). FLOPs: none (additions and copies are not counted).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..options import WeightOptions
from ..shapes import ShapeError, TensorType, describe, known_size
from .base import Count, LayerKind, LayerParams, Slot, WeightRoles, register, require_float

Pos = Annotated[int, Field(gt=0)]
_BIAS_OPTIONS = ("bias_init", "bias_regularizer", "bias_constraint")
_KERNEL_OPTIONS = ("init", "regularizer", "constraint")


def require_steps(x: TensorType, kind: str) -> None:
    """A TxF sequence; an image's hint says how ViT makes one of its patches."""
    require_float(x, kind)
    if x.rank == 2:
        known_size(x, -1, kind)
        return
    if x.rank == 3:
        c, h, w = x.dims
        hint = (f"an image is not a sequence: make its {h}x{w} positions the steps with `reshape {c}x{h * w} -> "
                f"permute 1x0` ({h * w}x{c})")
    elif x.rank == 1:
        hint = "a vector has no steps: put it before the pooling (`class_pool`, `global_avgpool`)"
    else:
        hint = "reshape it to TxF first"
    raise ShapeError(f"{kind} expects a sequence TxF, got {describe(x)}", hint, about_input=True)


class _TableOptions(LayerParams, WeightOptions):
    """init=, regularizer= and constraint= act on the learned vectors; there is no bias."""

    @model_validator(mode="after")
    def _no_bias(self):
        given = [o for o in _BIAS_OPTIONS if getattr(self, o) is not None]
        if given:
            raise ValueError(f"has no bias, so {given[0]}= does not apply; use init=, regularizer= or constraint=")
        return self


# --- positional_embedding ------------------------------------------------------------

class PositionalEmbeddingParams(_TableOptions):
    encoding: Literal["learned", "sinusoidal"] = "learned"
    max_length: Pos | None = None

    @model_validator(mode="after")
    def _sinusoidal_has_no_table(self):
        if self.encoding == "sinusoidal":
            given = [o for o in _KERNEL_OPTIONS if getattr(self, o) is not None]
            if given:
                raise ValueError(f"with encoding=sinusoidal has no weights, so {given[0]}= does not apply")
            if self.max_length is not None:
                raise ValueError("with encoding=sinusoidal takes no max_length= (it is computed for any length)")
        return self


def _table_length(p: PositionalEmbeddingParams, x: TensorType) -> int:
    steps = x.dims[0]
    if p.max_length is not None:
        if isinstance(steps, int) and steps > p.max_length:
            raise ShapeError(f"positional_embedding max_length={p.max_length} is shorter than its input {x}",
                             f"write max_length={steps} or more, or leave it out", about_input=True)
        return p.max_length
    if not isinstance(steps, int):
        raise ShapeError(f"a learned positional_embedding needs a table length: its input {x} has a run-time "
                         "length", "write max_length=N (the longest sequence), or use encoding=sinusoidal",
                         about_input=True)
    return steps


def _positional_shape(p: PositionalEmbeddingParams, x: TensorType) -> TensorType:
    require_steps(x, "positional_embedding")
    if p.encoding == "learned":
        _table_length(p, x)
    return x


def _positional_count(p: PositionalEmbeddingParams, x: TensorType, y: TensorType) -> Count:
    if p.encoding == "sinusoidal":
        return Count()
    return Count(_table_length(p, x) * x.dims[-1])


def _positional_build(p: PositionalEmbeddingParams, x: TensorType, y: TensorType):
    from ..modules.transformer import LearnedPositions, SinusoidalPositions

    if p.encoding == "sinusoidal":
        return SinusoidalPositions(x.dims[-1])
    return LearnedPositions(_table_length(p, x), x.dims[-1])


register(LayerKind(
    name="positional_embedding", aliases=("position_embedding", "pos_embedding"), params=PositionalEmbeddingParams,
    slots=(Slot("encoding"),), shape=_positional_shape, count=_positional_count, build=_positional_build,
    weights=WeightRoles(embedding=("weight",)), category="recurrent",
    example="positional_embedding max_length=64",
    doc="adds a vector per position to a TxF sequence: encoding=learned (default; a table of max_length x F, "
        "max_length defaulting to T, initialized N(0, 0.02) as in BERT and ViT; the first T rows are used) or "
        "sinusoidal (Vaswani et al. 2017: sin and cos of position / 10000^(2i/F) in alternate features; no "
        "parameters, any length)",
))


# --- class_token ---------------------------------------------------------------------

class ClassTokenParams(_TableOptions):
    @model_validator(mode="after")
    def _token_is_a_vector(self):
        if self.init is not None and self.init.kind == "orthogonal":
            raise ValueError("init=orthogonal needs a weight of rank 2 or more, but the token is a vector")
        return self


def _class_token_shape(p: ClassTokenParams, x: TensorType) -> TensorType:
    require_steps(x, "class_token")
    steps = x.dims[0]
    return x.with_dims(steps + 1 if isinstance(steps, int) else steps, x.dims[-1])


def _class_token_count(p: ClassTokenParams, x: TensorType, y: TensorType) -> Count:
    return Count(x.dims[-1])


def _class_token_build(p: ClassTokenParams, x: TensorType, y: TensorType):
    from ..modules.transformer import ClassToken

    return ClassToken(x.dims[-1])


register(LayerKind(
    name="class_token", aliases=("cls_token",), params=ClassTokenParams, shape=_class_token_shape,
    count=_class_token_count, build=_class_token_build, weights=WeightRoles(embedding=("token",)),
    category="attention", example="class_token",
    doc="puts a learned token (F values, zeros at first) before the first step of a TxF sequence: (T+1)xF, "
        "as ViT's class token and BERT's [CLS]; `class_pool` reads it after the encoder",
))


# --- class_pool ------------------------------------------------------------------------

class ClassPoolParams(LayerParams):
    pass


def _class_pool_shape(p: ClassPoolParams, x: TensorType) -> TensorType:
    require_steps(x, "class_pool")
    return x.with_dims(x.dims[-1])


def _class_pool_build(p: ClassPoolParams, x: TensorType, y: TensorType):
    from ..modules.transformer import FirstStep

    return FirstStep()


register(LayerKind(
    name="class_pool", aliases=("cls_pool",), params=ClassPoolParams, shape=_class_pool_shape,
    build=_class_pool_build, category="attention", example="class_pool",
    doc="keeps the first step of a TxF sequence: F, the class token's output (ViT's and BERT's pooling "
        "after `class_token`); no parameters",
))

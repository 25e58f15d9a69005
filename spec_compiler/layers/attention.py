"""Attention over a TxF sequence (T may be dynamic).

Every kind here is self-attention: the queries, keys and values are the incoming
sequence itself (what a text classifier after an `lstm ... return_sequences=true`
needs). For a query step i and a key step j, with x the sequence:

- `attention score=dot` (Luong et al. 2015, "dot"):       s_ij = x_i . x_j
  `scale=true` divides by sqrt(F) (scaled dot-product, Vaswani et al. 2017). No weights.
- `attention score=general` (Luong's "general"):          s_ij = x_i^T W x_j, W FxF
  (F*F parameters, no bias; `scale=true` also divides by sqrt(F)).
- `attention score=additive` (Bahdanau et al. 2015):      s_ij = v . tanh(W1 x_i + W2 x_j)
  W1, W2 UxF and v of size U, `units=U` (default F): 2*F*U + U parameters, no biases,
  as in the paper.
  output_i = sum_j softmax_j(s_ij) x_j: the output is TxF. `causal=true` lets step i
  attend only to steps j <= i.
  `luong_attention` is `attention` with score dot (default) or general; `bahdanau_attention`
  is `attention score=additive`.
- `multihead_attention heads=H` (Vaswani et al. 2017): PyTorch's nn.MultiheadAttention,
  batch-first, query = key = value = x. The F features are split among the H heads
  (F/H each, Keras' key_dim), so H must divide F. Parameters: the Q, K, V projections
  (3*F*F + 3*F) and the output projection (F*F + F): 4*F*F + 4*F, or 4*F*F with
  `bias=false`. Output TxF. `dropout=` acts on the attention weights while training.
- `attention_pool` (Yang et al. 2016, hierarchical attention networks): pools TxF to F:
  e_t = v . tanh(W h_t + b), a = softmax over t, output = sum_t a_t h_t; `units=U`
  (default F): W UxF, b U, v U, so F*U + 2*U parameters.

Padding. `mask=padding` (on every kind here) ignores the steps whose token id is 0 (the
padding `specc train` writes, Keras' `mask_zero`): no query attends to them, and
attention_pool gives them no weight. The layer reads the ids of the model's tokens
input, which the built model hands it before each forward: so the model's input must be
tokens, and the layer's steps must be the tokens' steps (no pooling or strided conv1d
before it). The mask is computed from the ids at run time, so an exported model keeps a
dynamic length.

FLOPs are multiply-adds per sample with T as given (a dynamic T counts as 1): the
projections plus the T*T score and weighted-sum products; tanh, softmax and additions
are not counted.

`init=`, `regularizer=` and `constraint=` apply to every weight matrix of a kind (and
to v); `bias_*` options to the biases of `multihead_attention` and `attention_pool`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..options import Constraint, Initializer, Regularizer, WeightOptions
from ..shapes import ShapeError, TensorType, describe, known_size
from .base import Count, LayerKind, LayerParams, Slot, WeightRoles, divisors, register, require_float

Pos = Annotated[int, Field(gt=0)]


def _steps(d) -> int:
    """A time length for FLOPs: a dynamic length counts as 1."""
    return d if isinstance(d, int) else 1


def require_sequence(x: TensorType, kind: str) -> None:
    require_float(x, kind)
    if x.rank == 2:
        known_size(x, -1, kind)
        return
    message = f"{kind} expects a sequence TxF, got {describe(x)}"
    if x.rank == 1:
        hint = ("attention needs the time axis: give the recurrent layer before it return_sequences=true; "
                f"to read a vector as a sequence of single values, `reshape {x.dims[0]}x1` first")
    elif x.rank == 3:
        c, h, w = x.dims
        hint = f"an image has no time axis: read its rows as time steps with `reshape {c * h}x{w}`"
    else:
        hint = "reshape it to TxF first"
    raise ShapeError(message, hint, about_input=True)


class MaskOption(BaseModel):
    """`mask=padding`: ignore the steps whose token id is 0 (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    mask: Literal["none", "padding"] = "none"


class KernelOptions(BaseModel):
    """init/regularizer/constraint for layers with weight matrices and no biases."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    init: Initializer | None = None
    regularizer: Regularizer | None = None
    constraint: Constraint | None = None


# --- attention (dot / general / additive) ----------------------------------------

class AttentionParams(LayerParams, KernelOptions, MaskOption):
    score: Literal["dot", "general", "additive"] = "dot"
    units: Pos | None = None
    scale: bool = False
    causal: bool = False

    @model_validator(mode="after")
    def _consistent(self):
        if self.units is not None and self.score != "additive":
            raise ValueError(f"with score={self.score} takes no units= (it sizes additive scores: "
                             "use `attention score=additive units=U` or `bahdanau_attention U`)")
        if self.scale and self.score == "additive":
            raise ValueError("with score=additive takes no scale=true (it divides dot and general scores by sqrt(F))")
        if self.score == "dot":
            given = [o for o in KernelOptions.model_fields if getattr(self, o) is not None]
            if given:
                raise ValueError(f"with score=dot has no weights, so {given[0]}= does not apply")
        return self


class LuongParams(AttentionParams):
    score: Literal["dot", "general"] = "dot"


class BahdanauParams(AttentionParams):
    score: Literal["additive"] = "additive"


# W (general) is `kernel.weight`; W1, W2, v (additive) are `query.weight`, `key.weight`, `score.weight`.
SCORE_WEIGHTS = WeightRoles(kernel=("kernel.weight", "query.weight", "key.weight", "score.weight"),
                            onnx_ops=("MatMul",))


def _attention_units(p: AttentionParams, x: TensorType) -> int:
    return p.units or x.dims[-1]


def _attention_shape(kind: str):
    def shape(p: AttentionParams, x: TensorType) -> TensorType:
        require_sequence(x, kind)
        return x

    return shape


def _attention_count(p: AttentionParams, x: TensorType, y: TensorType) -> Count:
    features = x.dims[-1]
    if p.score == "general":
        return Count(features * features)
    if p.score == "additive":
        units = _attention_units(p, x)
        return Count(2 * features * units + units)
    return Count()


def _attention_flops(p: AttentionParams, x: TensorType, y: TensorType) -> int:
    t, features = _steps(x.dims[0]), x.dims[-1]
    weighted_sum = t * t * features
    if p.score == "dot":
        return t * t * features + weighted_sum
    if p.score == "general":
        return t * features * features + t * t * features + weighted_sum
    units = _attention_units(p, x)
    return 2 * t * features * units + t * t * units + weighted_sum


def _attention_build(p: AttentionParams, x: TensorType, y: TensorType):
    from ..modules.attention import Attention

    return Attention(p.score, x.dims[-1], _attention_units(p, x), p.scale, p.causal, p.mask)


register(LayerKind(
    name="attention", params=AttentionParams, slots=(Slot("score"),), shape=_attention_shape("attention"),
    count=_attention_count, flops=_attention_flops, build=_attention_build, weights=SCORE_WEIGHTS,
    category="attention", example="attention score=general",
    doc="self-attention over a TxF sequence, output TxF: step i becomes sum_j softmax_j(s_ij) x_j with the "
        "score s chosen by score=dot|general|additive. dot: x_i . x_j (no weights; scale=true divides by "
        "sqrt(F)); general: x_i^T W x_j (F*F weights); additive: v . tanh(W1 x_i + W2 x_j) (units=U, default "
        "F: 2*F*U + U weights, no biases); causal=true attends to steps j <= i only; mask=padding ignores the "
        "steps whose token id is 0",
))

register(LayerKind(
    name="luong_attention", aliases=("dot_attention",), params=LuongParams, slots=(Slot("score"),),
    shape=_attention_shape("luong_attention"), count=_attention_count, flops=_attention_flops,
    build=_attention_build, weights=SCORE_WEIGHTS, category="attention", example="luong_attention general",
    doc="Luong's multiplicative self-attention (Luong et al. 2015) over a TxF sequence, output TxF: "
        "score=dot (default) x_i . x_j, or score=general x_i^T W x_j (F*F weights); scale=true divides by "
        "sqrt(F); causal=true attends to steps j <= i only; mask=padding ignores padding (token id 0)",
))

register(LayerKind(
    name="bahdanau_attention", aliases=("additive_attention",), params=BahdanauParams, slots=(Slot("units"),),
    shape=_attention_shape("bahdanau_attention"), count=_attention_count, flops=_attention_flops,
    build=_attention_build, weights=SCORE_WEIGHTS, category="attention", example="bahdanau_attention units=32",
    doc="Bahdanau's additive self-attention (Bahdanau et al. 2015) over a TxF sequence, output TxF: "
        "s_ij = v . tanh(W1 x_i + W2 x_j), units=U (default F): 2*F*U + U weights, no biases; "
        "causal=true attends to steps j <= i only; mask=padding ignores padding (token id 0)",
))


# --- multihead_attention ---------------------------------------------------------

class MultiheadParams(LayerParams, WeightOptions, MaskOption):
    heads: Pos
    key_dim: Pos | None = None
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    bias: bool = True
    causal: bool = False

    @model_validator(mode="after")
    def _bias_options(self):
        if not self.bias:
            given = [o for o in ("bias_init", "bias_regularizer", "bias_constraint") if getattr(self, o) is not None]
            if given:
                raise ValueError(f"with bias=false has no biases, so {given[0]}= does not apply")
        return self


def _multihead_shape(p: MultiheadParams, x: TensorType) -> TensorType:
    require_sequence(x, "multihead_attention")
    features = x.dims[-1]
    if features % p.heads:
        raise ShapeError(
            f"multihead_attention heads={p.heads} must divide the {features} features of its input {x}",
            f"each head attends over features/heads values (PyTorch's nn.MultiheadAttention): use heads= one of "
            f"{divisors(features)}, or project to a multiple of {p.heads} first with `dense N`",
            about_input=True,
        )
    if p.key_dim is not None and p.key_dim * p.heads != features:
        raise ShapeError(
            f"multihead_attention key_dim={p.key_dim} with heads={p.heads} needs {p.key_dim * p.heads} features, "
            f"its input {x} has {features}",
            f"each head gets features/heads = {features // p.heads} values: write key_dim={features // p.heads}, "
            f"leave key_dim out, or project first with `dense {p.key_dim * p.heads}`",
            about_input=True,
        )
    return x


def _multihead_count(p: MultiheadParams, x: TensorType, y: TensorType) -> Count:
    features = x.dims[-1]
    return Count(4 * features * features + (4 * features if p.bias else 0))


def _multihead_flops(p: MultiheadParams, x: TensorType, y: TensorType) -> int:
    t, features = _steps(x.dims[0]), x.dims[-1]
    return 4 * t * features * features + 2 * t * t * features


def _multihead_build(p: MultiheadParams, x: TensorType, y: TensorType):
    from ..modules.attention import MultiheadSelfAttention

    return MultiheadSelfAttention(x.dims[-1], p.heads, p.dropout, p.bias, p.causal, p.mask)


register(LayerKind(
    name="multihead_attention", aliases=("mha", "self_attention", "multi_head_attention"), params=MultiheadParams,
    slots=(Slot("heads"),), shape=_multihead_shape, count=_multihead_count, flops=_multihead_flops,
    build=_multihead_build, category="attention", example="multihead_attention heads=4",
    weights=WeightRoles(kernel=("in_proj_weight", "out_proj.weight"), bias=("in_proj_bias", "out_proj.bias"),
                        onnx_ops=("MatMul",)),
    doc="multi-head self-attention (Vaswani et al. 2017) over a TxF sequence, output TxF: PyTorch's "
        "nn.MultiheadAttention with query = key = value; heads must divide F (each head gets F/heads "
        "features, Keras' key_dim); 4*F*F + 4*F parameters (Q, K, V and output projections with biases; "
        "bias=false drops the 4*F); dropout= on the attention weights; causal=true attends to earlier steps only; "
        "mask=padding ignores the steps whose token id is 0",
))


# --- attention_pool ----------------------------------------------------------------

class AttentionPoolParams(LayerParams, WeightOptions, MaskOption):
    units: Pos | None = None


def _pool_units(p: AttentionPoolParams, x: TensorType) -> int:
    return p.units or x.dims[-1]


def _attention_pool_shape(p: AttentionPoolParams, x: TensorType) -> TensorType:
    require_sequence(x, "attention_pool")
    return x.with_dims(x.dims[-1])


def _attention_pool_count(p: AttentionPoolParams, x: TensorType, y: TensorType) -> Count:
    units = _pool_units(p, x)
    return Count(x.dims[-1] * units + 2 * units)


def _attention_pool_flops(p: AttentionPoolParams, x: TensorType, y: TensorType) -> int:
    t, features, units = _steps(x.dims[0]), x.dims[-1], _pool_units(p, x)
    return t * features * units + t * units + t * features


def _attention_pool_build(p: AttentionPoolParams, x: TensorType, y: TensorType):
    from ..modules.attention import AttentionPool

    return AttentionPool(x.dims[-1], _pool_units(p, x), p.mask)


register(LayerKind(
    name="attention_pool", aliases=("attention_pooling",), params=AttentionPoolParams, slots=(Slot("units"),),
    shape=_attention_pool_shape, count=_attention_pool_count, flops=_attention_pool_flops,
    build=_attention_pool_build, category="attention", example="attention_pool",
    weights=WeightRoles(kernel=("proj.weight", "score.weight"), bias=("proj.bias",), onnx_ops=("MatMul",)),
    doc="attention pooling over time (Yang et al. 2016): TxF to F, output sum_t a_t h_t with "
        "a = softmax_t(v . tanh(W h_t + b)); units=U (default F): F*U + 2*U parameters; T may be dynamic; "
        "mask=padding gives the steps whose token id is 0 no weight",
))

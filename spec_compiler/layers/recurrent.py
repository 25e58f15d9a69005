"""Sequence layers: embedding, rnn/lstm/gru, bidirectional and time-distributed.

Sequences are TxF, batch first; T may be dynamic (`?` or a name). Token ids are an
int T with a vocabulary, turned into vectors by `embedding`.

Parameter counts are what the PyTorch modules hold. PyTorch's recurrent layers carry
two bias vectors per gate (`bias_ih` and `bias_hh`) where Keras' LSTM and SimpleRNN
carry one, so specc's count of an LSTM is 4*U larger per layer than Keras' summary
(3*U for a Keras GRU with reset_after=false; Keras' default GRU, reset_after=true,
already has two and matches).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..options import Constraint, Initializer, Regularizer, WeightOptions
from ..shapes import ShapeError, TensorType, describe, known_size
from .base import SEQUENCE, BodyResult, Count, InferBody, LayerKind, LayerParams, Slot, WeightRoles, register

Pos = Annotated[int, Field(gt=0)]
RECURRENT_KINDS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _steps(d) -> int:
    """A time length for FLOPs: a dynamic length counts as 1."""
    return d if isinstance(d, int) else 1


# --- embedding -------------------------------------------------------------------

class EmbeddingParams(LayerParams, WeightOptions):
    units: Pos

    @model_validator(mode="after")
    def _no_bias(self):
        for option in ("bias_init", "bias_regularizer", "bias_constraint"):
            if getattr(self, option) is not None:
                raise ValueError(f"has no bias, so {option}= does not apply; "
                                 f"use init=, regularizer= or constraint= for its vectors")
        return self


def _embedding_shape(p: EmbeddingParams, x: TensorType) -> TensorType:
    if x.dtype != "int" or x.vocab is None:
        raise ShapeError(
            f"embedding expects token ids, got {describe(x)}",
            "embedding turns integer token ids into vectors: declare `input tokens T vocab=V` before it; "
            "a float input already has features, so remove the embedding",
            about_input=True,
        )
    return x.with_dims(*x.dims, p.units)


def _embedding_count(p: EmbeddingParams, x: TensorType, y: TensorType) -> Count:
    return Count(x.vocab * p.units)


def _embedding_build(p: EmbeddingParams, x: TensorType, y: TensorType):
    from torch import nn

    return nn.Embedding(x.vocab, p.units)


register(LayerKind(
    name="embedding", params=EmbeddingParams, slots=(Slot("units"),), shape=_embedding_shape,
    count=_embedding_count, build=_embedding_build, weights=WeightRoles(embedding=("weight",), onnx_ops=("Gather",)),
    category="recurrent", example="embedding 100",
    doc="maps each token id to a learned vector of `units` values: T token ids (vocabulary V) "
        "to TxN; holds V*N parameters",
))


# --- rnn / lstm / gru ------------------------------------------------------------

class RecurrentParams(LayerParams, WeightOptions):
    units: Pos
    layers: Pos = 1
    return_sequences: bool = False
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    bias: bool = True
    # Keras' recurrent_* arguments: they act on the hidden-to-hidden kernels
    # (`weight_hh_l*`); init= and friends act on the input kernels (`weight_ih_l*`).
    recurrent_init: Initializer | None = None
    recurrent_regularizer: Regularizer | None = None
    recurrent_constraint: Constraint | None = None

    @model_validator(mode="after")
    def _dropout_needs_stack(self):
        if self.dropout and self.layers == 1:
            raise ValueError(
                f"dropout={self.dropout} acts between stacked layers (as in PyTorch), and this layer has "
                "layers=1; stack it with layers=2 or more, or add a `dropout` layer after it")
        spec = self.recurrent_init
        if spec is not None and spec.kind == "uniform" and spec.min >= spec.max:
            raise ValueError(f"uniform needs min < max, got min={spec.min}, max={spec.max}")
        spec = self.recurrent_constraint
        if spec is not None and spec.kind == "min_max_norm" and spec.min_value > spec.max_value:
            raise ValueError("min_max_norm needs min_value <= max_value")
        return self


class RnnParams(RecurrentParams):
    # The cell's own nonlinearity (PyTorch's name). A trailing activation word
    # (`rnn 32 relu`) would instead act on the layer's output, as for every layer.
    nonlinearity: Literal["tanh", "relu"] = "tanh"


def _recurrent_shape(kind: str):
    def shape(p: RecurrentParams, x: TensorType) -> TensorType:
        _require_sequence(x, kind)
        return x.with_dims(x.dims[0], p.units) if p.return_sequences else x.with_dims(p.units)

    return shape


def _require_sequence(x: TensorType, kind: str) -> None:
    message = f"{kind} expects a sequence TxF, got {describe(x)}"
    if x.dtype == "int":
        raise ShapeError(message, "add `embedding N` before it to turn token ids into vectors", about_input=True)
    if x.rank == 2:
        known_size(x, -1, kind)
        return
    if x.rank == 1:
        hint = (f"to stack recurrent layers, give the one before it return_sequences=true (or use layers=N); "
                f"to read a vector as a sequence of single values, `reshape {x.dims[0]}x1` first")
    elif x.rank == 3:
        c, h, w = x.dims
        hint = (f"an image has no time axis: read its rows as time steps with `reshape {c * h}x{w}`, "
                "or turn each frame of a TxCxHxW video into a vector with `timedistributed { ... -> flatten }`")
    elif x.rank == 4:
        hint = "turn each frame into a vector first: `timedistributed { conv ... -> flatten }`"
    else:
        hint = "reshape it to TxF first"
    raise ShapeError(message, hint, about_input=True)


def _recurrent_count(kind: str):
    def count(p: RecurrentParams, x: TensorType, y: TensorType) -> Count:
        return Count(recurrent_params(kind, x.dims[-1], p.units, p.layers, p.bias))

    return count


def recurrent_params(kind: str, features: int, units: int, layers: int = 1, bias: bool = True) -> int:
    """PyTorch's count: per layer, gates * (U*in + U*U + 2U) with two bias vectors."""
    total = 0
    for layer in range(layers):
        inputs = features if layer == 0 else units
        total += GATES[kind] * (units * inputs + units * units + (2 * units if bias else 0))
    return total


def _recurrent_flops(kind: str):
    def flops(p: RecurrentParams, x: TensorType, y: TensorType) -> int:
        per_step = sum(GATES[kind] * p.units * ((x.dims[-1] if layer == 0 else p.units) + p.units)
                       for layer in range(p.layers))
        return _steps(x.dims[0]) * per_step

    return flops


def _recurrent_build(kind: str):
    def build(p: RecurrentParams, x: TensorType, y: TensorType):
        from ..modules.recurrent import recurrent

        return recurrent(kind, x.dims[-1], p.units, p.layers, p.return_sequences, p.dropout, p.bias,
                         getattr(p, "nonlinearity", "tanh"))

    return build


# PyTorch's names: `weight_ih_l0` (input kernel), `weight_hh_l0` (hidden-to-hidden), two biases per layer.
RECURRENT_WEIGHTS = WeightRoles(kernel=("weight_ih_l*",), recurrent_kernel=("weight_hh_l*",),
                                bias=("bias_ih_l*", "bias_hh_l*"))
_RECURRENT_DOC = (
    "over a TxF sequence (T may be dynamic): returns the last step's output U, or every step's TxU with "
    "return_sequences=true; layers=N stacks N layers, dropout= acts between them (as in PyTorch); "
    "init=/regularizer=/constraint= act on the input kernels, recurrent_init= (e.g. orthogonal)/"
    "recurrent_regularizer=/recurrent_constraint= on the hidden-to-hidden ones. "
)

register(LayerKind(
    name="rnn", aliases=("simple_rnn",), params=RnnParams, slots=(Slot("units"),),
    shape=_recurrent_shape("rnn"), count=_recurrent_count("rnn"), flops=_recurrent_flops("rnn"),
    build=_recurrent_build("rnn"), weights=replace(RECURRENT_WEIGHTS, onnx_ops=("RNN",)),
    category="recurrent", example="rnn 32 nonlinearity=relu",
    doc="simple (Elman) recurrent layer; nonlinearity=tanh|relu for its cell " + _RECURRENT_DOC
        + "PyTorch's RNN has two bias vectors, so its count is U per layer more than Keras' SimpleRNN. "
        "FLOPs: multiply-adds over T steps",
))

register(LayerKind(
    name="lstm", params=RecurrentParams, slots=(Slot("units"),),
    shape=_recurrent_shape("lstm"), count=_recurrent_count("lstm"), flops=_recurrent_flops("lstm"),
    build=_recurrent_build("lstm"), weights=replace(RECURRENT_WEIGHTS, onnx_ops=("LSTM",)),
    category="recurrent", example="lstm 64",
    doc="long short-term memory (Hochreiter & Schmidhuber 1997) " + _RECURRENT_DOC
        + "PyTorch's LSTM has two bias vectors, so its count is 4*U per layer more than Keras' summary. "
        "FLOPs: multiply-adds over T steps",
))

register(LayerKind(
    name="gru", params=RecurrentParams, slots=(Slot("units"),),
    shape=_recurrent_shape("gru"), count=_recurrent_count("gru"), flops=_recurrent_flops("gru"),
    build=_recurrent_build("gru"), weights=replace(RECURRENT_WEIGHTS, onnx_ops=("GRU",)),
    category="recurrent", example="gru 64",
    doc="gated recurrent unit (Cho et al. 2014) " + _RECURRENT_DOC
        + "PyTorch's GRU has two bias vectors, as Keras' default GRU (reset_after=true); "
        "Keras' GRU with reset_after=false reports 3*U per layer less. FLOPs: multiply-adds over T steps",
))


# --- bidirectional ---------------------------------------------------------------

class BidirectionalParams(LayerParams):
    merge: Literal["concat", "sum", "mul", "ave"] = "concat"


def _wrapped(infer: InferBody) -> str:
    kinds = infer.kinds[0] if infer.kinds else ()
    example = "write it as `bidirectional { lstm 64 }`"
    if not kinds:
        raise ShapeError("bidirectional needs one rnn, lstm or gru layer in its body", example)
    if len(kinds) > 1:
        raise ShapeError(
            f"bidirectional wraps exactly one rnn, lstm or gru layer, got {len(kinds)} layers ({', '.join(kinds)})",
            f"{example}, and put the other layers before or after it",
        )
    if kinds[0] not in RECURRENT_KINDS:
        raise ShapeError(f"bidirectional wraps an rnn, lstm or gru layer, got {kinds[0]}",
                         f"{example}; other layers need no direction")
    return kinds[0]


def _bidirectional_shape(p: BidirectionalParams, x: TensorType, infer: InferBody) -> TensorType:
    _wrapped(infer)
    out = infer(0, x).output
    if p.merge != "concat":
        return out
    return out.with_dims(*out.dims[:-1], 2 * out.dims[-1])


def _bidirectional_count(p, x, y, bodies: list[BodyResult]) -> Count:
    one = bodies[0].count
    return Count(2 * one.trainable, 2 * one.non_trainable)


def _bidirectional_flops(p, x, y, bodies: list[BodyResult]) -> int:
    return 2 * bodies[0].flops


def _bidirectional_build(p: BidirectionalParams, x, y, children):
    from ..modules.recurrent import Bidirectional, find_recurrent

    (body,) = children
    layer = find_recurrent(body)
    if layer is None:  # the shape rule admits one recurrent layer only
        raise ShapeError("bidirectional wraps exactly one rnn, lstm or gru layer")
    return Bidirectional(layer, p.merge)


register(LayerKind(
    name="bidirectional", params=BidirectionalParams, shape=_bidirectional_shape, count=_bidirectional_count,
    flops=_bidirectional_flops, build=_bidirectional_build, layout=SEQUENCE, category="recurrent",
    example="bidirectional { lstm 64 }",
    doc="runs the wrapped rnn/lstm/gru forward and (a copy with its own weights) backward over the sequence "
        "and merges the two outputs: merge=concat (default; 2U features)|sum|mul|ave; twice the wrapped "
        "layer's parameters; state_dict keys `forward_layer.*` and `backward_layer.*`",
))


# --- time-distributed ------------------------------------------------------------

class TimeDistributedParams(LayerParams):
    pass


def _timedistributed_shape(p, x: TensorType, infer: InferBody) -> TensorType:
    if x.rank < 2 or x.dtype == "int":
        hint = ("add `embedding N` first to turn token ids into a TxN sequence" if x.dtype == "int" else
                "its input needs a time axis first: TxF, or TxCxHxW for a video")
        raise ShapeError(f"timedistributed expects a sequence T x ..., got {describe(x)}", hint, about_input=True)
    step = TensorType(x.dims[1:], x.dtype, x.vocab)
    out = infer(0, step).output
    return TensorType((x.dims[0], *out.dims), out.dtype, out.vocab)


def _timedistributed_flops(p, x: TensorType, y, bodies: list[BodyResult]) -> int:
    return _steps(x.dims[0]) * bodies[0].flops


def _timedistributed_build(p, x, y, children):
    from ..modules.recurrent import TimeDistributed

    (body,) = children
    return TimeDistributed(body)


register(LayerKind(
    name="timedistributed", aliases=("time_distributed",), params=TimeDistributedParams,
    shape=_timedistributed_shape, flops=_timedistributed_flops, build=_timedistributed_build,
    layout=SEQUENCE, category="recurrent", example="timedistributed { dense 64 }",
    doc="applies its body to every time step with shared weights: T x ... to T x (the body's output), "
        "e.g. a dense per step of a TxF sequence, or a conv stack per frame of a TxCxHxW video; "
        "parameters are the body's (once), FLOPs T times the body's",
))

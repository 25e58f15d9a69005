"""Inference: output shape, parameter counts, FLOPs and activation memory per node.

Runs each registry entry's rules along the IR. Nothing here allocates tensors, so a
spec is checked instantly and a too-large model is rejected before it exists.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .errors import Diagnostic, SpecError
from .ir import ModelIR, Node
from .layers import REGISTRY
from .layers.base import BodyResult, Count, LayerKind
from .lengths import follow_leaf, settle, track_input
from .limits import Limits
from .shapes import ShapeError, TensorType, describe

BYTES_PER_VALUE = 4  # float32


@dataclass(frozen=True)
class LayerInfo:
    node: Node
    path: str
    input: TensorType
    output: TensorType
    count: Count  # this node's own parameters plus its bodies', split as the kinds' count rules split them
    # The same parameters split as training sees them: a `frozen` layer's (and a frozen layer's
    # inside a body) count as non-trainable, as in Keras' summary.
    as_trained: Count
    flops: int  # multiply-adds per sample (dynamic lengths counted as 1)
    activation_bytes: int  # this node's output plus its bodies' outputs, per sample
    children: tuple[tuple[LayerInfo, ...], ...] = ()

    @property
    def kind(self) -> LayerKind:
        return REGISTRY[self.node.kind]


@dataclass(frozen=True)
class ModelInfo:
    ir: ModelIR
    layers: tuple[LayerInfo, ...]

    @property
    def output(self) -> TensorType:
        return self.layers[-1].output if self.layers else self.ir.input.type

    @property
    def count(self) -> Count:
        return _total(layer.count for layer in self.layers)

    @property
    def as_trained(self) -> Count:
        """Trainable and non-trainable parameters as training sees them (`frozen` applied)."""
        return _total(layer.as_trained for layer in self.layers)

    @property
    def flops(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        return sum(layer.activation_bytes for layer in self.layers)

    @property
    def kinds(self) -> list[LayerKind]:
        """The registry entries the model uses, bodies included, each once, in model order."""
        names: dict[str, None] = {}

        def walk(layers: tuple[LayerInfo, ...]) -> None:
            for layer in layers:
                names[layer.node.kind] = None
                for body in layer.children:
                    walk(body)

        walk(self.layers)
        return [REGISTRY[name] for name in names]


class _Producer:
    """Which layer made the current value: for 'got 16x5x5 (from avgpool at line 6)'."""

    def __init__(self, word: str, line: int):
        self.word, self.line = word, line

    def __str__(self) -> str:
        return f"from {self.word} at line {self.line}"


def infer(ir: ModelIR, limits: Limits = Limits()) -> ModelInfo:
    producer = _Producer(f"input {ir.input.kind}", ir.input.span.line)
    layers = _infer_sequence(ir.nodes, track_input(ir.input.type), "", producer, ir)
    info = ModelInfo(ir, layers)
    _check_limits(info, limits)
    return info


def _infer_sequence(nodes, x: TensorType, prefix: str, producer: _Producer, ir: ModelIR) -> tuple[LayerInfo, ...]:
    infos: list[LayerInfo] = []
    for node in nodes:
        info = _infer_node(node, x, prefix, producer, ir)
        infos.append(info)
        x = info.output
        producer = _Producer(_word(node, ir), node.span.line)
    return tuple(infos)


@functools.lru_cache(maxsize=8)
def _lines(source: str) -> list[str]:
    return source.splitlines()


def _word(node: Node, ir: ModelIR) -> str:
    """The word the user wrote for a node (`conv`, not `conv2d`)."""
    lines = _lines(ir.source)  # split once per file, not once per node
    if 1 <= node.span.line <= len(lines) and node.span.end_column:
        return lines[node.span.line - 1][node.span.column - 1 : node.span.end_column - 1]
    return node.kind


class _BodyInference:
    """The `InferBody` handed to structural rules: infers and remembers bodies."""

    def __init__(self, node: Node, path: str, producer: _Producer, ir: ModelIR):
        self.node, self.path, self.producer, self.ir = node, path, producer, ir
        self.bodies = len(node.bodies)
        self.kinds = tuple(tuple(n.kind for n in body) for body in node.bodies)
        self.results: dict[int, tuple[LayerInfo, ...]] = {}
        self._cache: dict[tuple[int, TensorType], tuple[LayerInfo, ...]] = {}

    def __call__(self, index: int, x: TensorType) -> BodyResult:
        key = (index, x)
        if key not in self._cache:  # a rule may ask twice; bodies are inferred once per input
            label = REGISTRY[self.node.kind].layout.label(index)
            prefix = f"{self.path}.{label}." if label else f"{self.path}."
            self._cache[key] = _infer_sequence(self.node.bodies[index], x, prefix, self.producer, self.ir)
        infos = self._cache[key]
        self.results[index] = infos
        result = _summed(infos)
        return BodyResult(result.output or x, result.count, result.flops)


def _infer_node(node: Node, x: TensorType, prefix: str, producer: _Producer, ir: ModelIR) -> LayerInfo:
    kind = REGISTRY[node.kind]
    path = prefix + node.name
    layout = kind.layout
    children: tuple[tuple[LayerInfo, ...], ...] = ()
    try:
        if layout is None:
            y = follow_leaf(kind.shape, node.params, x, kind.shape(node.params, x), _origin(node))
            count = kind.count(node.params, x, y)
            as_trained = count
            flops = kind.flops(node.params, x, y)
        else:
            bodies = _BodyInference(node, path, producer, ir)
            if layout.parallel:
                _check_parallel_bodies(bodies, x, ir)
            y = settle(kind.shape(node.params, x, bodies), x, _origin(node))
            children = tuple(bodies.results.get(i, ()) for i in range(len(node.bodies)))
            results = [_summed(infos) for infos in children]
            count = kind.count(node.params, x, y, results)
            # Count rules combine their bodies' counts linearly (a sum; twice for bidirectional),
            # so the same rule over the bodies' as-trained counts splits the node's as training does.
            as_trained = kind.count(node.params, x, y, [
                replace(result, count=_total(info.as_trained for info in infos))
                for result, infos in zip(results, children)])
            flops = kind.flops(node.params, x, y, results)
        if getattr(node.params, "activation", None):
            REGISTRY[node.params.activation].shape(REGISTRY[node.params.activation].params(), y)
        if getattr(node.params, "mask", None) == "padding":
            _check_padding_mask(node.kind, x, ir)
    except ShapeError as error:
        message = error.message
        if error.about_input:
            message = f"{message} ({producer})"
        span = node.span
        if error.body is not None and 0 <= error.body < len(node.body_spans):
            span = node.body_spans[error.body]
        raise SpecError(Diagnostic(message, span, error.hint), ir.source) from None
    if node.params.frozen:
        as_trained = Count(0, count.total)
    child_bytes = sum(c.activation_bytes for body in children for c in body)
    own_bytes = 0 if layout is not None and layout.transparent else y.numel_estimate() * BYTES_PER_VALUE
    return LayerInfo(node, path, x, y, count, as_trained, flops, own_bytes + child_bytes, children)


def _origin(node: Node) -> str:
    """Which layer made a run-time length (lengths.py), for messages."""
    return f"{node.kind} at line {node.span.line}"


def _check_padding_mask(kind: str, x: TensorType, ir: ModelIR) -> None:
    """`mask=padding` (layers/attention.py) reads the padding of the model's token ids, so
    the model's input must be tokens, and the layer's steps must be the tokens' steps."""
    tokens = ir.input.type
    if tokens.dtype != "int":
        raise ShapeError(f"{kind} mask=padding reads the padding (token id 0) of a tokens input, but the model's "
                         f"input is {describe(tokens)}", "declare `input tokens T vocab=V`, or leave mask= out")
    steps, length = x.dims[0], track_input(tokens).dims[0]
    if steps != length:
        count = f"{steps} steps" if isinstance(steps, int) or isinstance(length, int) else "a different number of steps"
        raise ShapeError(f"{kind} mask=padding has one value per input token ({length}), but its input {x} has "
                         f"{count}", "attend before the layers that change the length, or leave mask= out",
                         about_input=True)


def _check_parallel_bodies(bodies: _BodyInference, x: TensorType, ir: ModelIR) -> None:
    """Branches (and a residual's body and shortcut) all read the same input, so a mistake
    in one does not hide a mistake in another: infer each, and report all their errors."""
    found: list[Diagnostic] = []
    for index in range(bodies.bodies):
        try:
            bodies(index, x)
        except SpecError as error:
            found += [d for d in error.diagnostics if d not in found]
    if found:
        raise SpecError(found, ir.source)


def _summed(infos: tuple[LayerInfo, ...]) -> BodyResult:
    output = infos[-1].output if infos else None
    return BodyResult(output, _total(info.count for info in infos), sum(i.flops for i in infos))


def _total(counts: Iterable[Count]) -> Count:
    total = Count()
    for count in counts:
        total = total + count
    return total


def _check_limits(info: ModelInfo, limits: Limits) -> None:
    total = info.count.total
    if total > limits.max_params:
        biggest = max(info.layers, key=lambda layer: layer.count.total)
        raise SpecError(Diagnostic(
            f"the model has {total:,} parameters, over the limit of {limits.max_params:,} "
            f"(the largest layer, {biggest.path}, has {biggest.count.total:,})",
            biggest.node.span, "shrink the model, or raise the limit with --max-params N",
        ), info.ir.source)
    memory = info.activation_bytes
    if memory > limits.max_activation_bytes:
        biggest = max(info.layers, key=lambda layer: layer.activation_bytes)
        raise SpecError(Diagnostic(
            f"the model needs {_gib(memory)} of activations per sample, over the limit of "
            f"{_gib(limits.max_activation_bytes)} (the largest, {biggest.path}, needs {_gib(biggest.activation_bytes)})",
            biggest.node.span, "downsample earlier, or raise the limit with --max-activation-memory",
        ), info.ir.source)


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


__all__ = ["infer", "Limits", "LayerInfo", "ModelInfo"]

"""Inference: output shape, parameter counts, FLOPs and activation memory per node.

Runs each registry entry's rules along the IR, step by step: each step reads the tensors
earlier steps (or the inputs) named. Nothing here allocates tensors, so a spec is
checked instantly and a too-large model is rejected before it exists. A second use of
a layer (`Node.shares`) and a tied weight (`tie=`) hold no parameters of their own:
they are counted once, where the weights are defined.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from os.path import commonprefix

from .errors import Diagnostic, Span, SpecError, did_you_mean
from .ir import InputSpec, ModelIR, Node, Step
from .layers import REGISTRY
from .layers.base import BodyResult, Count, LayerKind
from .lengths import follow_leaf, settle, track_inputs
from .limits import Limits
from .shapes import ShapeError, TensorType, describe

BYTES_PER_VALUE = 4  # float32


@dataclass(frozen=True)
class LayerInfo:
    """What inference found for one node: its input and output types, parameters, FLOPs."""

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
class StepInfo:
    """One step inferred: the types of the tensors it reads, its layers, the type it names."""

    step: Step
    inputs: tuple[TensorType, ...]
    layers: tuple[LayerInfo, ...]
    output: TensorType


@dataclass(frozen=True)
class ModelInfo:
    """The whole model inferred: the IR and each step's layers (counts, FLOPs, memory are sums)."""

    ir: ModelIR
    steps: tuple[StepInfo, ...]

    @property
    def layers(self) -> tuple[LayerInfo, ...]:
        """Every step's layers, in order: counts, FLOPs and memory are sums over them."""
        return tuple(layer for step in self.steps for layer in step.layers)

    @property
    def inputs(self) -> dict[str, TensorType]:
        return {spec.name: spec.type for spec in self.ir.inputs}

    @property
    def outputs(self) -> dict[str, TensorType]:
        """The model's outputs, in `output` order."""
        tensors = self.inputs | {step.step.name: step.output for step in self.steps}
        return {spec.name: tensors[spec.name] for spec in self.ir.outputs}

    @property
    def output(self) -> TensorType:
        """The model's only output."""
        outputs = self.outputs
        if len(outputs) != 1:
            raise ValueError(f"model {self.ir.name} has {len(outputs)} outputs")
        return next(iter(outputs.values()))

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
    graph = _Graph(ir)
    steps = tuple(graph.step(step) for step in ir.steps)
    info = ModelInfo(ir, steps)
    _check_limits(info, limits)
    return info


@dataclass
class _Known:
    """The model being inferred and every layer inferred so far, by path (bodies' too):
    what a tie (`tie=wte`) and a further use of a layer look back at."""

    ir: ModelIR
    layers: dict[str, LayerInfo] = field(default_factory=dict)


class _Graph:
    """What inference knows so far: each named tensor's type and producer, and every
    layer inferred (by path), for shared uses and ties to look back at."""

    def __init__(self, ir: ModelIR):
        self.ir = ir
        self.known = _Known(ir)
        self.tensors: dict[str, TensorType] = {}
        self.producers: dict[str, _Producer] = {}
        for spec, tracked in zip(ir.inputs, track_inputs([spec.type for spec in ir.inputs])):
            self.tensors[spec.name] = tracked
            word = f"input {spec.kind}" if len(ir.inputs) == 1 else f"input {spec.name}"
            self.producers[spec.name] = _Producer(word, spec.span.line)

    def step(self, step: Step) -> StepInfo:
        inputs = tuple(self.tensors[source] for source in step.sources)
        producer = self.producers[step.sources[0]]
        infos: list[LayerInfo] = []
        x = inputs[0]
        for index, node in enumerate(step.nodes):
            merged = inputs if index == 0 and len(inputs) > 1 else None
            try:
                info = self.node(node, x, producer, merged)
            except SpecError as error:
                raise _naming_sources(error, step.sources) if merged else error from None
            infos.append(info)
            x = info.output
            producer = _Producer(_word(node, self.ir), node.span.line)
        self.tensors[step.name], self.producers[step.name] = x, producer
        return StepInfo(step, inputs, tuple(infos), x)

    def node(self, node: Node, x: TensorType, producer: _Producer, merged: tuple[TensorType, ...] | None) -> LayerInfo:
        if node.shares is not None:
            self._check_reuse(node, x)
        info = _infer_node(node, x, "", producer, self.known, merged)
        if node.shares is not None:
            info = self.known.layers[info.path] = _without_params(info)
        return info

    def _check_reuse(self, node: Node, x: TensorType) -> None:
        first = self.known.layers[node.shares]
        if first.input != x:
            raise SpecError(Diagnostic(
                f"`{node.shares}` reuses the layer from line {first.node.span.line}, which reads {first.input}; "
                f"here it reads {x}", node.span,
                "a shared layer must read the same shape at every use"), self.ir.source)


def _tied(info: LayerInfo, known: _Known) -> LayerInfo:
    """A dense layer whose weight is an embedding's table: checked against the table,
    and counted without that weight (it is counted at the embedding)."""
    node, ir = info.node, known.ir
    target = node.params.tie
    where = _option_span(node, "tie", ir)
    table = known.layers.get(target)
    if table is None:
        # the layer of that name nearest to this one (in the same body, if there is one there)
        by_path = sorted((path for path in known.layers if path.endswith(f".{target}")),
                         key=lambda path: -len(commonprefix([path, info.path])))
        hint = (f"a layer in a body is named by its path: did you mean `{by_path[0]}`?" if by_path
                else did_you_mean(target, known.layers) or "tie= names an embedding defined before it: "
                                                            "`embedding 768 name=wte`")
        raise SpecError(Diagnostic(f"`tie={target}` names no earlier layer", where, hint), ir.source)
    if not table.kind.weights.embedding or not table.output.dims:
        raise SpecError(Diagnostic(f"`tie={target}`: {table.node.kind} `{target}` has no table to share", where,
                                   "tie= names an embedding layer: `embedding 768 name=wte`"), ir.source)
    columns = table.output.dims[-1]
    rows = table.count.total // columns
    units, features = info.output.dims[-1], info.input.dims[-1]
    if (units, features) != (rows, columns):
        raise SpecError(Diagnostic(
            f"{_word(node, ir)} {units} over {features} features has a {units}x{features} weight; "
            f"{target}'s table is {rows}x{columns}", where,
            f"a layer tied to `{target}` needs {rows} units and {columns} input features"), ir.source)
    count = info.count + Count(-units * features)
    as_trained = Count(0, count.total) if node.params.frozen else info.as_trained + Count(-units * features)
    return replace(info, count=count, as_trained=as_trained)


def _naming_sources(error: SpecError, sources: tuple[str, ...]) -> SpecError:
    """A merge rule's error at a step's head, worded by the tensors merged: the rule
    speaks of branches (`branch 2 gives 3x16x16`), the line names tensors (`mask`)."""
    def named(message: str | None) -> str | None:
        if message is None:
            return None
        message = re.sub(r"\bbranch (\d+)\b", lambda match: f"`{sources[int(match[1]) - 1]}`", message)
        message = re.sub(r"\b(every|one|each) branch\b", r"\1 tensor", message)
        return message.replace(" branches ", " tensors ")

    return SpecError([replace(d, message=named(d.message), hint=named(d.hint)) for d in error.diagnostics],
                     error.source, error.not_shown, error.warnings)


def _without_params(info: LayerInfo) -> LayerInfo:
    """A second use of a layer: its shapes, FLOPs and activations, none of its parameters."""
    children = tuple(tuple(_without_params(child) for child in body) for body in info.children)
    return replace(info, count=Count(), as_trained=Count(), children=children)


def _option_span(node: Node, key: str, ir: ModelIR) -> Span:
    """Where `key=` is written on the node's line (the word's span if it is not there)."""
    lines = _lines(ir.source)
    if 1 <= node.span.line <= len(lines):
        column = lines[node.span.line - 1].find(f"{key}=", node.span.column - 1)
        if column >= 0:
            return Span(node.span.file, node.span.line, column + 1, column + 1 + len(key) + 1)
    return node.span


def _infer_sequence(nodes, x: TensorType, prefix: str, producer: _Producer, known: _Known) -> tuple[LayerInfo, ...]:
    infos: list[LayerInfo] = []
    for node in nodes:
        info = _infer_node(node, x, prefix, producer, known)
        infos.append(info)
        x = info.output
        producer = _Producer(_word(node, known.ir), node.span.line)
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

    def __init__(self, node: Node, path: str, producer: _Producer, known: _Known):
        self.node, self.path, self.producer, self.known = node, path, producer, known
        self.bodies = len(node.bodies)
        self.kinds = tuple(tuple(n.kind for n in body) for body in node.bodies)
        self.results: dict[int, tuple[LayerInfo, ...]] = {}
        self._cache: dict[tuple[int, TensorType], tuple[LayerInfo, ...]] = {}

    def __call__(self, index: int, x: TensorType) -> BodyResult:
        key = (index, x)
        if key not in self._cache:  # a rule may ask twice; bodies are inferred once per input
            label = REGISTRY[self.node.kind].layout.label(index)
            prefix = f"{self.path}.{label}." if label else f"{self.path}."
            self._cache[key] = _infer_sequence(self.node.bodies[index], x, prefix, self.producer, self.known)
        infos = self._cache[key]
        self.results[index] = infos
        result = _summed(infos)
        return BodyResult(result.output or x, result.count, result.flops)


class _Sources:
    """The `InferBody` of a merge at a step's head (`concat a b`): its bodies are the
    tensors it reads, so the merge's rule (broadcasting, axis) is the branch form's."""

    def __init__(self, types: tuple[TensorType, ...]):
        self.types = types
        self.bodies = len(types)
        self.kinds: tuple[tuple[str, ...], ...] = ((),) * len(types)
        self.results: dict[int, tuple[LayerInfo, ...]] = {}

    def __call__(self, index: int, x: TensorType) -> BodyResult:
        return BodyResult(self.types[index], Count(), 0)


def _infer_node(node: Node, x: TensorType, prefix: str, producer: _Producer, known: _Known,
                merged: tuple[TensorType, ...] | None = None) -> LayerInfo:
    """One node on input `x`; a merge at a step's head reads the `merged` tensors instead of bodies."""
    ir = known.ir
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
            bodies = _Sources(merged) if merged else _BodyInference(node, path, producer, known)
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
    info = LayerInfo(node, path, x, y, count, as_trained, flops, own_bytes + child_bytes, children)
    if getattr(node.params, "tie", None):
        info = _tied(info, known)
    known.layers[path] = info
    return info


def _origin(node: Node) -> str:
    """Which layer made a run-time length (lengths.py), for messages."""
    return f"{node.kind} at line {node.span.line}"


def _check_padding_mask(kind: str, x: TensorType, ir: ModelIR) -> None:
    """`mask=padding` (layers/attention.py) reads the padding of the model's token ids (its
    only input, or the first tokens input of several), so the model must have token ids,
    and the layer's steps must be the tokens' steps."""
    tokens = padding_source(ir).type
    if tokens.dtype != "int":
        raise ShapeError(f"{kind} mask=padding reads the padding (token id 0) of a tokens input, but the model's "
                         f"input is {describe(tokens)}", "declare `input tokens T vocab=V`, or leave mask= out")
    tracked = dict(zip((spec.name for spec in ir.inputs), track_inputs([spec.type for spec in ir.inputs])))
    steps, length = x.dims[0], tracked[padding_source(ir).name].dims[0]
    if steps != length:
        count = f"{steps} steps" if isinstance(steps, int) or isinstance(length, int) else "a different number of steps"
        raise ShapeError(f"{kind} mask=padding has one value per input token ({length}), but its input {x} has "
                         f"{count}", "attend before the layers that change the length, or leave mask= out",
                         about_input=True)


def padding_source(ir: ModelIR) -> InputSpec:
    """The input whose padding (token id 0) `mask=padding` reads: the only input, or the
    first tokens input of several."""
    if len(ir.inputs) == 1:
        return ir.inputs[0]
    return next((spec for spec in ir.inputs if spec.type.dtype == "int"), ir.inputs[0])


def _check_parallel_bodies(bodies: _BodyInference | _Sources, x: TensorType, ir: ModelIR) -> None:
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


__all__ = ["infer", "Limits", "LayerInfo", "ModelInfo", "StepInfo", "padding_source"]

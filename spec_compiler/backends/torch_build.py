"""Lowering: the checked model (ModelInfo) to a PyTorch module.

Each node is built by its registry entry's `build` (structural kinds get their bodies
already built, each a `Sequence`), so this file holds no per-kind code. It adds what
every kind shares: the trailing activation word, per-layer initializers, regularizers
and constraints (spec_compiler/options.py; the arithmetic is in torch_weights.py), and
`frozen`.

Weight roles. Each parameter of a node's own module (a structural node's bodies
excluded) has the role its registry entry's `WeightRoles` gives it, and takes the options
of that role (layers/base.py ROLE_OPTIONS): a kernel, embedding table or norm scale
`init`, `regularizer` and `constraint`; a recurrent kernel the `recurrent_*` options; a
bias the `bias_*` ones. A structural builder may copy a built body layer
(bidirectional's backward copy): the copy gets the same options, its initializer drawn
afresh.

With no `init=` a layer keeps PyTorch's own initialization (Kaiming-uniform for dense and
conv, N(0, 1) for embeddings, U(-1/sqrt(H), 1/sqrt(H)) for recurrent layers); a spec that
names an initializer gets Keras' definition of it (docs/pytorch.md).

`frozen` turns requires_grad off for every parameter of the node and its bodies, and, as
Keras does for a non-trainable BatchNormalization, keeps the batch norms inside it in
inference mode (their running statistics stay fixed) even while the model trains.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ..errors import Diagnostic, SpecError
from ..inference import LayerInfo, ModelInfo, padding_source
from ..layers import REGISTRY
from ..layers.activations import PROBABILITY_ACTIVATIONS
from ..layers.base import ROLE_OPTIONS
from ..modules.structure import Sequence
from ..text import PAD_ID
from . import torch_weights


class SpecModule(Sequence):
    """The model a spec describes, as a PyTorch module.

    forward(x) gives the model's output (probabilities when it ends in softmax or
    sigmoid); forward_logits(x) the values before that final activation. Both first hand
    the padding of the token ids to the layers written with `mask=padding`. `tied` lists
    the (tied, table) parameter paths of `tie=` layers: one Parameter under two keys.
    """

    def __init__(self, steps: list, final: str | None, final_activation: str | None, name: str,
                 input_dtype: torch.dtype):
        super().__init__(steps, final)
        # Plain attributes, written past nn.Module.__setattr__ so a layer may share a name.
        vars(self).update(
            final_activation=final_activation, model_name=name, input_dtype=input_dtype,
            _regularized=[], _constrained=[], _frozen=[], tied=[],
            _padding_readers=[m for m in self.modules() if getattr(m, "masks_padding", False)],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.share_padding(x)
        return super().forward(x)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        self.share_padding(x)
        return super().forward_logits(x)

    def share_padding(self, x: torch.Tensor) -> None:
        """Give the layers with `mask=padding` (modules/attention.py) the padding of the
        token ids: (N, T), True at the padding id."""
        if self._padding_readers:
            padding = x == PAD_ID
            for layer in self._padding_readers:
                layer.padding = padding

    def regularization_loss(self) -> torch.Tensor:
        """The sum of every l1/l2 term on trainable weights (as Keras: a frozen layer's
        weights add none); a scalar, zero when the spec has none."""
        total = None
        for module, name, spec in self._regularized:
            weight = getattr(module, name)
            if not weight.requires_grad:
                continue
            term = torch_weights.penalty(weight, spec)
            total = term if total is None else total + term
        if total is None:
            first = next(self.parameters(), None)
            return torch.zeros((), device=first.device if first is not None else None)
        return total

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Project constrained weights in place; call after each optimizer.step().
        Frozen weights are left as they are."""
        for module, name, spec in self._constrained:
            weight = getattr(module, name)
            if weight.requires_grad:
                torch_weights.project(weight, spec)

    @property
    def has_regularization(self) -> bool:
        return bool(self._regularized)

    @property
    def has_constraints(self) -> bool:
        return bool(self._constrained)

    def train(self, mode: bool = True) -> SpecModule:
        super().train(mode)
        for module in self._frozen:
            for inner in module.modules():
                if isinstance(inner, nn.modules.batchnorm._BatchNorm):
                    inner.eval()
        return self


@dataclass(frozen=True)
class GraphStep:
    """One step of a graph at run time: read `sources` (merged by `merge.combine` when
    several), run `body`, name the result `name`."""

    name: str
    sources: tuple[str, ...]
    merge: nn.Module | None
    merge_activation: nn.Module | None
    body: Sequence  # not registered: its layers are registered once, on the model


class SpecGraph(SpecModule):
    """A graph spec's model: several inputs, named tensors, several outputs, shared layers.

    forward(*inputs) takes the inputs in the spec's order and returns the only output, or a
    tuple of the outputs in `output` order; forward_logits likewise, each output before its
    final softmax/sigmoid (`final_activations` names them by output). Each layer is
    registered once, under its node name, so state_dict keys read as a chain's; a shared
    layer's second use runs the same module object."""

    def __init__(self, layers: list, plan: list[GraphStep], ir, final_activations: dict[str, str | None]):
        dtypes = tuple(torch.int64 if spec.type.dtype == "int" else torch.float32 for spec in ir.inputs)
        outputs = tuple(spec.name for spec in ir.outputs)
        only = final_activations.get(outputs[0]) if len(outputs) == 1 else None
        super().__init__(layers, None, only, ir.name, dtypes[0])
        padding = padding_source(ir).name
        vars(self).update(
            plan=plan, input_names=tuple(spec.name for spec in ir.inputs), output_names=outputs,
            input_dtypes=dtypes, final_activations=final_activations,
            padding_input=[spec.name for spec in ir.inputs].index(padding),
            read_later={source for step in plan for source in step.sources},
        )

    def forward(self, *inputs: torch.Tensor):
        return self.run(inputs, logits=False)

    def forward_logits(self, *inputs: torch.Tensor):
        return self.run(inputs, logits=True)

    def run(self, inputs: tuple, logits: bool):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"{self.model_name} takes {len(self.input_names)} inputs "
                            f"({', '.join(self.input_names)}), got {len(inputs)}")
        self.share_padding(inputs[self.padding_input])
        values = dict(zip(self.input_names, inputs))
        before_final = {}
        for step in self.plan:
            if step.merge is None:
                x = values[step.sources[0]]
            else:
                x = step.merge.combine([values[source] for source in step.sources])
                if step.merge_activation is not None:
                    x = step.merge_activation.forward(x)
            if logits and step.name in self.output_names and step.body.final is not None:
                before_final[step.name] = step.body.forward_logits(x)
                if step.name in self.read_later:
                    values[step.name] = step.body(x)
            else:
                values[step.name] = step.body(x)
        outputs = tuple(before_final[name] if name in before_final else values[name] for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs


def build_module(info: ModelInfo, seed: int | None = None) -> SpecModule:
    """Build the CPU module for a checked model; `seed` makes initialization reproducible."""
    rng = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        return _Builder(info).build()


class _Builder:
    def __init__(self, info: ModelInfo):
        self.info = info
        self.regularized: list[tuple[nn.Module, str, Any]] = []
        self.constrained: list[tuple[nn.Module, str, Any]] = []
        self.frozen: list[nn.Module] = []
        self.layers: dict[str, LayerInfo] = {}
        self.modules: dict[str, nn.Module] = {}  # each node's module by its path (the first, not a copy)
        self.marked: set[int] = set()

    def build(self) -> SpecModule:
        ir = self.info.ir
        if ir.is_chain:
            steps = [self.step(layer) for layer in self.info.layers]
            final, final_activation = _final(self.info.layers, steps)
            dtype = torch.int64 if ir.input.type.dtype == "int" else torch.float32
            module = SpecModule(steps, final, final_activation, ir.name, dtype)
        else:
            module = self.graph()
        vars(module).update(_regularized=self.regularized, _constrained=self.constrained, _frozen=self.frozen,
                            tied=self.tie_weights())
        for inner in module.modules():
            vars(inner).pop(_NODE_MARK, None)
        return module.train()

    def graph(self) -> SpecGraph:
        """Each step's layers built (a shared use takes the first use's module), registered
        once on the model, and run by a plan of steps."""
        layers, plan, finals = [], [], {}
        for step_info in self.info.steps:
            entries = []
            for layer in step_info.layers:
                entry = self.reuse(layer) if layer.node.shares else self.step(layer)
                if not layer.node.shares:
                    layers.append(entry)
                entries.append(entry)
            step, body_layers, merge = step_info.step, step_info.layers, None
            if len(step.sources) > 1:  # the merge head combines the tensors it reads
                merge, entries, body_layers = entries[0], entries[1:], body_layers[1:]
            final, finals[step.name] = _final(body_layers, entries)
            plan.append(GraphStep(step.name, step.sources, merge and merge[1], merge and _activation_of(merge),
                                  Sequence(entries, final)))
        ir = self.info.ir
        return SpecGraph(layers, plan, ir, {spec.name: finals.get(spec.name) for spec in ir.outputs})

    def reuse(self, layer: LayerInfo) -> tuple:
        """A second use of a named layer: the first use's module, its own trailing activation."""
        module = self.modules[layer.node.shares]
        activation = self.activation(getattr(layer.node.params, "activation", None), layer)
        return (layer.node.name, module) if activation is None else (layer.node.name, module, activation)

    def sequence(self, layers: tuple[LayerInfo, ...]) -> Sequence:
        steps = [self.step(layer) for layer in layers]
        return Sequence(steps, _final(layers, steps)[0])

    def step(self, layer: LayerInfo) -> tuple:
        """(name, module) or (name, module, trailing activation)."""
        node, kind = layer.node, REGISTRY[layer.node.kind]
        params = node.params
        if kind.layout is None:
            module = kind.build(params, layer.input, layer.output)
        else:  # every body built (an empty one, such as an identity shortcut, is an empty Sequence)
            children = [self.sequence(body) for body in layer.children]
            module = kind.build(params, layer.input, layer.output, children)
        if not isinstance(module, nn.Module):
            raise TypeError(f"the builder of `{node.kind}` returned {type(module).__name__}, not an nn.Module")
        if kind.layout is not None:
            self.adopt_copies(module)
        self.node_options(layer, module)
        activation = self.activation(getattr(params, "activation", None), layer)
        return (node.name, module) if activation is None else (node.name, module, activation)

    def node_options(self, layer: LayerInfo, module: nn.Module) -> None:
        """Initializers, regularizers, constraints and `frozen` for one node's module."""
        self.weight_options(layer, module)
        if getattr(layer.node.params, "frozen", False):
            for parameter in module.parameters():
                parameter.requires_grad_(False)
            self.frozen.append(module)
        # A marker that survives copy.deepcopy, so copies of this layer made by a
        # structural builder are found and given the same options (adopt_copies).
        vars(module)[_NODE_MARK] = layer.path
        self.layers[layer.path] = layer
        self.modules.setdefault(layer.path, module)
        self.marked.add(id(module))

    def tie_weights(self) -> list[tuple[str, str]]:
        """Give each `tie=` layer its table's Parameter itself (one tensor, two state_dict keys);
        returns the (tied, table) parameter paths."""
        tied = []
        for layer in self.layers.values():
            table_path = getattr(layer.node.params, "tie", None)
            if table_path is None:
                continue
            table = self.layers[table_path]  # inference checked that it names an embedding of the right shape
            weight, source = layer.kind.weights.kernel[0], table.kind.weights.embedding[0]
            setattr(self.modules[layer.path], weight, getattr(self.modules[table_path], source))
            tied.append((f"{layer.path}.{weight}", f"{table_path}.{source}"))
        return tied

    def adopt_copies(self, module: nn.Module) -> None:
        copies = [m for m in module.modules() if _NODE_MARK in vars(m) and id(m) not in self.marked]
        for copy in copies:
            self.node_options(self.layers[vars(copy)[_NODE_MARK]], copy)

    def activation(self, name: str | None, layer: LayerInfo) -> nn.Module | None:
        if not name or name in ("linear", "identity"):
            return None
        kind = REGISTRY[name]
        module = kind.build(kind.params(), layer.output, layer.output)
        if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
            raise TypeError(f"activation `{name}` holds parameters; it cannot be a trailing word")
        return module

    def weight_options(self, layer: LayerInfo, module: nn.Module) -> None:
        params, kind = layer.node.params, layer.kind
        wanted = {role: [getattr(params, option, None) for option in options] for role, options in ROLE_OPTIONS.items()}
        if not any(spec is not None for specs in wanted.values() for spec in specs):
            return
        for owner_name, owner in _own_modules(module):
            for local, parameter in owner.named_parameters(recurse=False):
                path = f"{owner_name}.{local}" if owner_name else local
                role = kind.weights.role(path)
                if role is None:
                    raise TypeError(f"the weight roles of `{kind.name}` do not name its parameter `{path}`")
                init, regularizer, constraint = wanted[role]
                where = f"{layer.path}.{path}"
                try:
                    if init is not None:
                        torch_weights.initialize(parameter, init, role)
                    if constraint is not None:
                        torch_weights.check_constraint(parameter, constraint)
                except torch_weights.InitializerError as error:
                    raise SpecError(Diagnostic(f"{error} ({where})", layer.node.span), self.info.ir.source) from None
                # Plain namespaces: the module stays picklable (torch.save(module)).
                if regularizer is not None:
                    self.regularized.append((owner, local, SimpleNamespace(**regularizer.model_dump())))
                if constraint is not None:
                    self.constrained.append((owner, local, SimpleNamespace(**constraint.model_dump())))


_NODE_MARK = "_specc_node"


def _own_modules(module: nn.Module, prefix: str = ""):
    """(name, module) for `module` and its descendants, leaving out other nodes' modules
    (a structural node's bodies): the modules whose parameters are this node's own."""
    yield prefix, module
    for name, child in module.named_children():
        if _NODE_MARK in vars(child) or isinstance(child, Sequence):
            continue
        yield from _own_modules(child, f"{prefix}.{name}" if prefix else name)


def _final(layers: tuple[LayerInfo, ...], steps: list[tuple]) -> tuple[str | None, str | None]:
    """How a sequence ends in softmax/sigmoid: ("step" | "trailing" | "nested", name) or
    (None, None). "nested": the last node has one body that ends in one (a block, or
    time-distributed) and its module has a `forward_logits` that leaves it out."""
    if not layers:
        return None, None
    last = layers[-1]
    if last.node.kind in PROBABILITY_ACTIVATIONS:
        return "step", last.node.kind
    trailing = getattr(last.node.params, "activation", None)
    if trailing in PROBABILITY_ACTIVATIONS:
        return "trailing", trailing
    module = steps[-1][1]
    layout = REGISTRY[last.node.kind].layout
    if layout is not None and layout.form == "sequence" and hasattr(module, "forward_logits"):
        body = module if isinstance(module, Sequence) else next(
            (child for child in module.children() if isinstance(child, Sequence)), None)
        if body is not None and body.final is not None:
            return "nested", _final(last.children[0], _steps_of(body))[1]
    return None, None


def _activation_of(entry: tuple) -> nn.Module | None:
    return entry[2] if len(entry) > 2 else None


def _steps_of(sequence: Sequence) -> list[tuple]:
    return [(name, sequence._modules[name]) for name in sequence._names]


__all__ = ["GraphStep", "SpecGraph", "SpecModule", "build_module"]

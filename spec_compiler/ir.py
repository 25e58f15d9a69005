"""The typed IR: a graph of steps, each a sequence of nodes whose parameters are
validated pydantic models.

A model reads its inputs and runs its steps in order; each step reads one named
tensor (or merges several with its first node), runs a sequence of nodes and names
the result. A plain chain is one input, one step and one output. Structural nodes
(blocks, residual, concat/add, time-distributed, bidirectional) hold sub-sequences
(`bodies`); a structural node says how its bodies combine. Top-level node names are
unique across all steps and body names within their sequence, so `parent.child`
paths are stable state_dict prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Literal

from .errors import Diagnostic, Span
from .layers.base import LayerParams
from .shapes import TensorType

if TYPE_CHECKING:  # pragma: no cover - loaded on first use: a spec without `train { }` never needs it
    from .train_config import TrainConfig

InputKind = Literal["image", "vector", "sequence", "tokens"]


@dataclass(frozen=True)
class Node:
    """One layer in the IR: its kind, path name, validated parameters, span and bodies."""

    kind: str
    name: str
    params: LayerParams
    span: Span
    bodies: tuple[tuple[Node, ...], ...] = ()
    # For `shortcut { }` and `branch { }` bodies: where each body was written.
    body_spans: tuple[Span, ...] = ()
    # A second use of a named layer: the path of the node whose module (and weights) it reuses.
    shares: str | None = None


@dataclass(frozen=True)
class InputSpec:
    """One model input: its kind (`image`, `tokens`...), type, span and name."""

    kind: InputKind
    type: TensorType
    span: Span
    name: str = "input"


@dataclass(frozen=True)
class Step:
    """One line of a graph: read `sources`, run `nodes` in order, name the result `name`.
    With several sources the first node is a merge kind that takes them as its inputs."""

    name: str
    sources: tuple[str, ...]
    nodes: tuple[Node, ...]
    span: Span


@dataclass(frozen=True)
class OutputSpec:
    """A model output: the tensor it returns (also its ONNX output name)."""

    name: str
    span: Span


@dataclass(frozen=True)
class ModelIR:
    """The checked model: inputs, steps and outputs, its train section, and its source."""

    name: str
    inputs: tuple[InputSpec, ...]
    steps: tuple[Step, ...]
    outputs: tuple[OutputSpec, ...]
    train_section: TrainConfig | None  # None: the spec has no `train { }`
    path: str
    source: str
    plugins: tuple[str, ...] = field(default_factory=tuple)
    # Valid but probably unintended values (severity "warning"), in file order.
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def train(self) -> TrainConfig:
        """The train section, or the defaults of an empty one."""
        return self.train_section if self.train_section is not None else empty_train_section()

    @property
    def is_chain(self) -> bool:
        """One input, one step reading it, one output: the stack every backend has always taken."""
        return (len(self.inputs) == 1 and len(self.steps) == 1 and len(self.outputs) == 1
                and self.steps[0].sources == (self.inputs[0].name,) and self.outputs[0].name == self.steps[0].name)

    @property
    def input(self) -> InputSpec:
        """The model's only input."""
        if len(self.inputs) != 1:
            raise ValueError(f"model {self.name} has {len(self.inputs)} inputs")
        return self.inputs[0]

    @property
    def nodes(self) -> tuple[Node, ...]:
        """A chain's nodes, in order."""
        if not self.is_chain:
            raise ValueError(f"model {self.name} is a graph, not a chain")
        return self.steps[0].nodes


def chain(name: str, input: InputSpec, nodes: tuple[Node, ...], **rest) -> ModelIR:
    """The IR of a plain chain: the input, one step through `nodes`, its result the output."""
    step = Step("output", (input.name,), nodes, input.span)
    return ModelIR(name, (input,), (step,), (OutputSpec(step.name, input.span),), **rest)


@cache
def empty_train_section() -> TrainConfig:
    """`train { }`, built on first use: `specc compile` of a spec without a train section
    then never loads the training options' schemas."""
    from .train_config import TrainConfig

    return TrainConfig()

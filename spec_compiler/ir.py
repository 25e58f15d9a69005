"""The typed IR: a tree of nodes whose parameters are validated pydantic models.

A model is a sequence of nodes; structural nodes (blocks, residual, concat/add,
time-distributed, bidirectional) hold sub-sequences (`bodies`). Data flows along
each sequence; a structural node says how its bodies combine. Names are unique
within their sequence, so `parent.child` paths are stable state_dict prefixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .errors import Diagnostic, Span
from .layers.base import LayerParams
from .shapes import TensorType
from .train_config import TrainConfig

InputKind = Literal["image", "vector", "sequence", "tokens"]


@dataclass(frozen=True)
class Node:
    kind: str
    name: str
    params: LayerParams
    span: Span
    bodies: tuple[tuple[Node, ...], ...] = ()
    # For `shortcut { }` and `branch { }` bodies: where each body was written.
    body_spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class InputSpec:
    kind: InputKind
    type: TensorType
    span: Span
    name: str = "input"


@dataclass(frozen=True)
class ModelIR:
    name: str
    input: InputSpec
    nodes: tuple[Node, ...]
    train: TrainConfig
    path: str
    source: str
    plugins: tuple[str, ...] = field(default_factory=tuple)
    # Valid but probably unintended values (severity "warning"), in file order.
    warnings: tuple[Diagnostic, ...] = ()

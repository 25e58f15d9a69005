"""The abstract syntax tree: what the user wrote, each piece with its source span.

The AST knows nothing about layer kinds; it only records words, values and
structure. Meaning is given later, by elaboration and the layer registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .errors import Span


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Dims:
    """`6x5x5`, `1x32x32`, `?x16`: integers, or a str for a symbolic length."""

    items: tuple[int | str, ...]
    span: Span


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Unknown:
    """A bare `?`: a dimension whose size is only known at run time."""

    span: Span


@dataclass(frozen=True)
class Call:
    """`l2(0.01)`, `variance_scaling(scale=2, mode=fan_in)`."""

    name: str
    args: tuple[Value, ...]
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class ListValue:
    items: tuple[Value, ...]
    span: Span


Value = Union[Number, Dims, Name, String, Unknown, Call, ListValue]


@dataclass(frozen=True)
class Option:
    key: str
    value: Value
    span: Span  # the key


@dataclass(frozen=True)
class Layer:
    word: str
    args: tuple[Value, ...]
    options: tuple[Option, ...]
    body: tuple[Statement, ...] | None
    span: Span  # the word


@dataclass(frozen=True)
class Chain:
    layers: tuple[Layer, ...]


@dataclass(frozen=True)
class Assignment:
    """`a = left -> tower`: names the value of a chain (a tensor later lines can read)."""

    name: str
    chain: Chain
    span: Span  # the name


@dataclass(frozen=True)
class OutputDecl:
    """`output digit parity`: the model's outputs, in order."""

    names: tuple[Name, ...]
    span: Span  # the word `output`


@dataclass(frozen=True)
class ModelDecl:
    name: str
    span: Span


@dataclass(frozen=True)
class InputDecl:
    kind: str
    args: tuple[Value, ...]
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class BlockParam:
    name: str
    default: Value | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[BlockParam, ...]
    body: tuple[Statement, ...]
    span: Span


@dataclass(frozen=True)
class TrainSection:
    options: tuple[Option, ...]
    span: Span


Statement = Union[ModelDecl, InputDecl, BlockDef, TrainSection, Chain, Assignment, OutputDecl]


@dataclass(frozen=True)
class SpecFile:
    path: str
    source: str
    statements: tuple[Statement, ...] = field(default_factory=tuple)


def plain(value: Value):
    """The Python value of a literal (used for options once names are resolved)."""
    if isinstance(value, Number):
        return value.value
    if isinstance(value, Dims):
        return value.items
    if isinstance(value, (Name,)):
        return value.name
    if isinstance(value, String):
        return value.value
    if isinstance(value, Unknown):
        return "?"
    if isinstance(value, ListValue):
        return [plain(item) for item in value.items]
    if isinstance(value, Call):
        return {
            "kind": value.name,
            "args": [plain(a) for a in value.args],
            **{o.key: plain(o.value) for o in value.options},
        }
    raise TypeError(value)

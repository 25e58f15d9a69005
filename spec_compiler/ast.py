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
    """`6`, `0.5`, `1e-4`: a number as written (an int when it has no point or exponent)."""

    value: int | float
    span: Span


@dataclass(frozen=True)
class Dims:
    """`6x5x5`, `1x32x32`, `?x16`: integers, or a str for a symbolic length."""

    items: tuple[int | str, ...]
    span: Span
    computed: bool = False  # made from an expression (`kxk`, `(2*c)x3x3`): its text is not its items


@dataclass(frozen=True)
class Name:
    """`relu`, `same`, `c`: a word in value position (a choice, or a block parameter)."""

    name: str
    span: Span


@dataclass(frozen=True)
class String:
    """`"text"`: a quoted value, its escapes undone."""

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
    """`[1, 2, 3]`: values in brackets."""

    items: tuple[Value, ...]
    span: Span


@dataclass(frozen=True)
class Binary:
    """`4*c`, `c+1`, `k//2`, `c%g`: whole-number arithmetic, computed when the block that
    holds it is expanded (its names are the block's parameters)."""

    operator: str  # one of OPERATORS
    left: Value
    right: Value
    span: Span  # the whole expression, as written


@dataclass(frozen=True)
class Negate:
    """`-c`, `-(k//2)`: a sign before a name or a parenthesized expression (`-1` is a Number)."""

    operand: Value
    span: Span


@dataclass(frozen=True)
class Group:
    """`(c+1)`: kept so that spans, and `specc fmt`, see the parentheses as written."""

    inner: Value
    span: Span


@dataclass(frozen=True)
class Size:
    """`3xk`, `(2*c)x3x3`: a size with a computed part; each factor an atom (a number, a
    name, `?`, a literal size or a parenthesized expression). A word like `kxk` is a Name
    until elaboration splits it, since `x` is also a letter of names."""

    factors: tuple[Value, ...]
    span: Span


Value = Union[Number, Dims, Name, String, Unknown, Call, ListValue, Binary, Negate, Group, Size]

OPERATORS = ("+", "-", "*", "//", "%")
EXPRESSIONS = (Binary, Negate, Group, Size)  # the nodes computed when elaborated


@dataclass(frozen=True)
class Option:
    """`key=value` after a layer, an input or a call, or in a train section."""

    key: str
    value: Value
    span: Span  # the key


@dataclass(frozen=True)
class Layer:
    """`conv 6x5x5 relu stride=2`, or a block call: its word, positional values, options and
    its `{ }` body if it has one (`repeat`, `branch`, `shortcut`...)."""

    word: str
    args: tuple[Value, ...]
    options: tuple[Option, ...]
    body: tuple[Statement, ...] | None
    span: Span  # the word


@dataclass(frozen=True)
class Chain:
    """Layers joined by `->` (one line, or lines continued by an arrow)."""

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
    """`model lenet5`: the model's name."""

    name: str
    span: Span


@dataclass(frozen=True)
class InputDecl:
    """`input image 1x32x32 name=left`: the input's kind, size and options."""

    kind: str
    args: tuple[Value, ...]
    options: tuple[Option, ...]
    span: Span


@dataclass(frozen=True)
class BlockParam:
    """A block's parameter, with its default value if it has one: `c` or `k=3`."""

    name: str
    default: Value | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    """`block name(params) { body }`: a reusable piece, expanded where it is called."""

    name: str
    params: tuple[BlockParam, ...]
    body: tuple[Statement, ...]
    span: Span


@dataclass(frozen=True)
class TrainSection:
    """`train { key=value ... }`: the spec's training options, read by train_config."""

    options: tuple[Option, ...]
    span: Span


Statement = Union[ModelDecl, InputDecl, BlockDef, TrainSection, Chain, Assignment, OutputDecl]


@dataclass(frozen=True)
class SpecFile:
    """A parsed file: its path, its normalized text (for carets) and its statements."""

    path: str
    source: str
    statements: tuple[Statement, ...] = field(default_factory=tuple)


def operands(value: Value) -> tuple[Value, ...]:
    """The values inside a list, a call or an expression (none inside a literal)."""
    if isinstance(value, ListValue):
        return value.items
    if isinstance(value, Call):
        return (*value.args, *(o.value for o in value.options))
    if isinstance(value, Binary):
        return value.left, value.right
    if isinstance(value, (Negate, Group)):
        return (value.operand if isinstance(value, Negate) else value.inner,)
    if isinstance(value, Size):
        return value.factors
    return ()


def written(value: Value) -> str:
    """A value as it reads in a spec, in canonical spacing: `4*c`, `(c+1)//2`, `3xk`, `[1, 2]`
    (for messages, and for `specc fmt` where the source text cannot be copied)."""
    if isinstance(value, Number):
        return repr(value.value)
    if isinstance(value, Dims):
        return "x".join(map(str, value.items))
    if isinstance(value, Name):
        return value.name
    if isinstance(value, String):
        return '"' + value.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Unknown):
        return "?"
    if isinstance(value, ListValue):
        return "[" + ", ".join(map(written, value.items)) + "]"
    if isinstance(value, Call):
        parts = [*map(written, value.args), *(f"{o.key}={written(o.value)}" for o in value.options)]
        return f"{value.name}(" + ", ".join(parts) + ")"
    if isinstance(value, Binary):
        return f"{written(value.left)}{value.operator}{written(value.right)}"
    if isinstance(value, Negate):
        return f"-{written(value.operand)}"
    if isinstance(value, Group):
        return f"({written(value.inner)})"
    if isinstance(value, Size):
        return "x".join(map(written, value.factors))
    raise TypeError(value)


def plain(value: Value):
    """The Python value of a literal (used for options once names are resolved). An
    expression is computed when elaborated; read before that (by the editor support) it
    stands as its text."""
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
    if isinstance(value, EXPRESSIONS):
        return written(value)
    raise TypeError(value)

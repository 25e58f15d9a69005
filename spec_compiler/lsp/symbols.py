"""Names in a document and where they are defined and used, for go-to-definition and
references.

The names: blocks (`block basic(c) { }` and each `basic 64`), block parameters
(inside the body, and as `c=64` at a use), layer names (`name=enc`, and a later line's
`enc` that runs the same layer again) and tensors (an input's `name=`, a graph's
`a = ...`, read at a line's head, by a merge `add a b` and in `output a`). Each is a
`Symbol` in a namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .. import ast
from ..elaborate.tensors import explicit_layer_names
from ..errors import Span
from ..layers import REGISTRY
from .positions import contains

BLOCK = "block"
PARAMETER = "parameter"
LAYER_NAME = "layer name"
TENSOR = "tensor"  # a named value flowing between layers: an input, or a graph's `NAME = chain`


@dataclass(frozen=True)
class Symbol:
    namespace: str
    name: str
    scope: str = ""  # where the name is visible: a block's name for its parameters


@dataclass(frozen=True)
class Occurrence:
    symbol: Symbol
    span: Span
    is_definition: bool


class SymbolIndex:
    def __init__(self, occurrences: list[Occurrence]):
        self.occurrences = occurrences

    def at(self, line: int, column: int) -> Occurrence | None:
        return next((o for o in self.occurrences if contains(o.span, line, column)), None)

    def definition(self, symbol: Symbol) -> Span | None:
        return next((o.span for o in self.occurrences if o.symbol == symbol and o.is_definition), None)

    def references(self, symbol: Symbol, include_declaration: bool = True) -> list[Span]:
        return [o.span for o in self.occurrences
                if o.symbol == symbol and (include_declaration or not o.is_definition)]

    def names(self, namespace: str, scope: str = "") -> list[str]:
        return sorted({o.symbol.name for o in self.occurrences
                       if o.is_definition and o.symbol.namespace == namespace and o.symbol.scope == scope})


def index_symbols(spec: ast.SpecFile) -> SymbolIndex:
    blocks = {s.name: s for s in spec.statements if isinstance(s, ast.BlockDef)}
    tensors = {s.name for s in spec.statements if isinstance(s, ast.Assignment)}
    tensors |= {str(ast.plain(o.value)) for s in spec.statements if isinstance(s, ast.InputDecl)
                for o in s.options if o.key == "name" and isinstance(o.value, (ast.Name, ast.String))}
    lines = [s for s in spec.statements if isinstance(s, (ast.Chain, ast.Assignment))]
    return SymbolIndex(list(_Collector(blocks, tensors, set(explicit_layer_names(lines))).statements(
        spec.statements, None, "")))


class _Collector:
    def __init__(self, blocks: dict[str, ast.BlockDef], tensors: set[str], layer_names: set[str]):
        self.blocks, self.tensors, self.layer_names = blocks, tensors, layer_names

    def statements(self, statements, block: ast.BlockDef | None, sequence: str) -> Iterator[Occurrence]:
        for statement in statements:
            if isinstance(statement, ast.BlockDef):
                yield Occurrence(Symbol(BLOCK, statement.name), statement.span, True)
                for param in statement.params:
                    yield Occurrence(Symbol(PARAMETER, param.name, statement.name), param.span, True)
                    if param.default is not None:
                        yield from self.values([param.default], statement)
                yield from self.statements(statement.body, statement, statement.name)
            elif isinstance(statement, ast.InputDecl):
                for option in statement.options:
                    if option.key == "name" and isinstance(option.value, (ast.Name, ast.String)):
                        name = ast.plain(option.value)
                        yield Occurrence(Symbol(TENSOR, name), option.value.span, True)
            elif isinstance(statement, ast.Chain):
                for layer in statement.layers:
                    yield from self.layer(layer, block, sequence)
            elif isinstance(statement, ast.Assignment):
                yield Occurrence(Symbol(TENSOR, statement.name), statement.span, True)
                for layer in statement.chain.layers:
                    yield from self.layer(layer, block, sequence)
            elif isinstance(statement, ast.OutputDecl):
                for name in statement.names:
                    yield Occurrence(Symbol(TENSOR, name.name), name.span, False)

    def graph_words(self, layer: ast.Layer) -> Iterator[Occurrence]:
        """On a top-level line: a tensor read at its head or merged, a named layer used again."""
        if REGISTRY.lookup(layer.word) is None and layer.word not in self.blocks:
            if layer.word in self.tensors:
                yield Occurrence(Symbol(TENSOR, layer.word), layer.span, False)
            elif layer.word in self.layer_names:
                yield Occurrence(Symbol(LAYER_NAME, layer.word, ""), layer.span, False)
        if layer.body is None:
            for arg in layer.args:
                if isinstance(arg, ast.Name) and arg.name in self.tensors:
                    yield Occurrence(Symbol(TENSOR, arg.name), arg.span, False)

    def layer(self, layer: ast.Layer, block: ast.BlockDef | None, sequence: str) -> Iterator[Occurrence]:
        if block is None and not sequence:
            yield from self.graph_words(layer)
        used = self.blocks.get(layer.word)
        if used is not None:
            yield Occurrence(Symbol(BLOCK, used.name), layer.span, False)
        parameters = {p.name for p in used.params} if used else set()
        for option in layer.options:
            if option.key in parameters:
                yield Occurrence(Symbol(PARAMETER, option.key, used.name), option.span, False)
            elif option.key == "name" and _literal_name(option.value, block):
                yield Occurrence(Symbol(LAYER_NAME, ast.plain(option.value), sequence), option.value.span, True)
        yield from self.values([*layer.args, *(o.value for o in layer.options)], block)
        if layer.body:
            inner = f"{sequence}/{layer.span.line}:{layer.span.column}"
            yield from self.statements(layer.body, block, inner)

    def values(self, values, block: ast.BlockDef | None) -> Iterator[Occurrence]:
        for value in values:
            if isinstance(value, ast.Name) and block is not None and _is_parameter(block, value.name):
                yield Occurrence(Symbol(PARAMETER, value.name, block.name), value.span, False)
            else:  # inside a list, a call or an expression (`4*c`)
                yield from self.values(ast.operands(value), block)


def _literal_name(value: ast.Value, block: ast.BlockDef | None) -> bool:
    """Whether a `name=` value is written out (not a block parameter standing for one)."""
    if isinstance(value, ast.String):
        return True
    return isinstance(value, ast.Name) and not (block and _is_parameter(block, value.name))


def _is_parameter(block: ast.BlockDef, name: str) -> bool:
    return any(p.name == name for p in block.params)

"""The document's outline: every layer the user wrote (with where it sits), and the
LSP document symbols (model, input, blocks, layers, the train section)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lsprotocol import types

from .. import ast
from ..errors import Span
from .analysis import Analysis
from .positions import Positions
from .textscan import layer_end, value_end


@dataclass(frozen=True)
class LayerSite:
    """A layer as written, with what encloses it."""

    layer: ast.Layer
    block: ast.BlockDef | None  # the block definition it is written in
    parent: ast.Layer | None  # the layer whose `{ }` holds it


def layer_sites(spec: ast.SpecFile) -> Iterator[LayerSite]:
    def walk(statements, block, parent) -> Iterator[LayerSite]:
        for statement in statements:
            if isinstance(statement, ast.BlockDef):
                yield from walk(statement.body, statement, None)
            elif isinstance(statement, (ast.Chain, ast.Assignment)):
                chain = statement.chain if isinstance(statement, ast.Assignment) else statement
                for layer in chain.layers:
                    yield LayerSite(layer, block, parent)
                    if layer.body:
                        yield from walk(layer.body, block, layer)

    yield from walk(spec.statements, None, None)


def layer_extent(analysis: Analysis, positions: Positions, layer: ast.Layer) -> tuple[int, int]:
    """Offsets of a layer's text: from its word to the end of its arguments, or to the
    `}` closing its body."""
    start = positions.offset(layer.span.line, layer.span.column)
    if layer.body is not None:
        body = analysis.braces.body_after(start)
        if body is not None:
            close = body[1] if body[1] is not None else len(analysis.source)
            return start, close + 1
    return start, layer_end(analysis.source, start)


def head_text(positions: Positions, layer: ast.Layer) -> str:
    """A layer's word and arguments as written (`conv 6x5x5 relu`), for names in lists."""
    start = positions.offset(layer.span.line, layer.span.column)
    return positions.source[start : layer_end(positions.source, start)].split("{", 1)[0].strip()


def document_symbols(analysis: Analysis, positions: Positions) -> list[types.DocumentSymbol]:
    if analysis.spec is None:
        return []
    return [symbol for statement in analysis.spec.statements
            for symbol in _statement_symbols(statement, analysis, positions)]


def _statement_symbols(statement, analysis: Analysis, positions: Positions) -> list[types.DocumentSymbol]:
    if isinstance(statement, ast.Chain):
        return [_layer_symbol(layer, analysis, positions) for layer in statement.layers]
    if isinstance(statement, ast.Assignment):
        layers = [_layer_symbol(layer, analysis, positions) for layer in statement.chain.layers]
        start = positions.offset(statement.span.line, statement.span.column)
        end = layer_extent(analysis, positions, statement.chain.layers[-1])[1]
        shape = analysis.tensor_types.get(statement.name)
        return [_symbol(statement.name, types.SymbolKind.Variable, statement.span, positions,
                        detail=str(shape) if shape else None, extent=(start, end), children=layers)]
    if isinstance(statement, ast.OutputDecl):
        start = positions.offset(statement.span.line, statement.span.column)
        last = statement.names[-1].span
        end = positions.offset(last.line, last.end_column or last.column)
        return [_symbol("output", types.SymbolKind.Variable, statement.span, positions,
                        detail=" ".join(name.name for name in statement.names), extent=(start, end))]
    if isinstance(statement, ast.ModelDecl):
        start = _keyword_start(positions, statement.span, "model")
        end = positions.offset(statement.span.line, statement.span.end_column or statement.span.column)
        return [_symbol(f"model {statement.name}", types.SymbolKind.Module, statement.span, positions,
                        extent=(start, end))]
    if isinstance(statement, ast.InputDecl):
        start = _keyword_start(positions, statement.span, "input")
        end = layer_end(analysis.source, start)
        return [_symbol("input", types.SymbolKind.Variable, statement.span, positions,
                        detail=analysis.source[start:end].partition(" ")[2].strip(), extent=(start, end))]
    if isinstance(statement, ast.BlockDef):
        params = ", ".join(p.name for p in statement.params)
        start = _keyword_start(positions, statement.span, "block")
        body = analysis.braces.body_after(start)
        end = (body[1] + 1) if body and body[1] is not None else len(analysis.source)
        children = [s for item in statement.body for s in _statement_symbols(item, analysis, positions)]
        return [_symbol(statement.name, types.SymbolKind.Function, statement.span, positions,
                        detail=f"block {statement.name}({params})", extent=(start, end), children=children)]
    if isinstance(statement, ast.TrainSection):
        start = positions.offset(statement.span.line, statement.span.column)
        body = analysis.braces.body_after(start)
        end = (body[1] + 1) if body and body[1] is not None else len(analysis.source)
        children = []
        for option in statement.options:
            key_start = positions.offset(option.span.line, option.span.column)
            value_start = positions.offset(option.value.span.line, option.value.span.column)
            end = value_end(analysis.source, value_start)
            children.append(_symbol(option.key, types.SymbolKind.Property, option.span, positions,
                                    detail=analysis.source[value_start:end], extent=(key_start, end)))
        return [_symbol("train", types.SymbolKind.Namespace, statement.span, positions, extent=(start, end),
                        children=children)]
    return []


def _keyword_start(positions: Positions, span: Span, keyword: str) -> int:
    """Where the statement whose name (or kind) is at `span` starts: at its keyword."""
    offset = positions.offset(span.line, span.column)
    found = positions.source.rfind(keyword, positions.line_starts[span.line - 1], offset)
    return found if found >= 0 else offset


def _layer_symbol(layer: ast.Layer, analysis: Analysis, positions: Positions) -> types.DocumentSymbol:
    children = [s for item in (layer.body or ()) for s in _statement_symbols(item, analysis, positions)]
    facts = analysis.infos_by_span.get(layer.span, [])
    detail = str(facts[0].output) if len(facts) == 1 else None
    kind = types.SymbolKind.Struct if layer.body is not None else types.SymbolKind.Field
    return _symbol(head_text(positions, layer), kind, layer.span, positions, detail=detail,
                   extent=layer_extent(analysis, positions, layer), children=children)


def _symbol(name: str, kind: types.SymbolKind, span: Span, positions: Positions, detail: str | None = None,
            extent: tuple[int, int] | None = None, children=None) -> types.DocumentSymbol:
    selection = positions.range(span)
    full = positions.offset_range(*extent) if extent else selection
    return types.DocumentSymbol(name=name, kind=kind, range=full, selection_range=selection, detail=detail,
                                children=children or None)

"""Hover: on a layer's word, its kind's doc with the output shape, parameters and FLOPs
inference found; on a block use, the block's signature and its facts; on an option, its
type and default; on an activation word, its doc; on a tensor's name, its shape and line."""

from __future__ import annotations

from lsprotocol import types

from .. import ast
from ..inference import LayerInfo
from ..layers import REGISTRY
from ..layers.base import LayerKind
from .analysis import Analysis
from .facts import layer_facts, shape_text
from .outline import layer_sites
from .positions import Positions, contains
from .schema import field_summary
from .symbols import TENSOR, Symbol

MAX_INSTANCES_SHOWN = 6


def hover(analysis: Analysis, positions: Positions, position: types.Position) -> types.Hover | None:
    if analysis.spec is None:
        return None
    line, column = positions.locate(position)
    named = analysis.symbols.at(line, column)
    if named is not None and named.symbol.namespace == TENSOR:
        return _hover(_tensor_text(analysis, named.symbol), positions, named.span)
    blocks = {s.name: s for s in analysis.spec.statements if isinstance(s, ast.BlockDef)}
    for site in layer_sites(analysis.spec):
        layer = site.layer
        if contains(layer.span, line, column):
            if layer.word in blocks:
                text = _block_text(blocks[layer.word], analysis.infos_by_span.get(layer.span, []))
            else:
                text = _kind_text(layer.word, analysis.infos_by_span.get(layer.span, []))
            return _hover(text, positions, layer.span) if text else None
        kind = REGISTRY.lookup(layer.word)
        for option in layer.options:
            if kind is not None and contains(option.span, line, column) and option.key in kind.params.model_fields:
                summary = field_summary(kind.params.model_fields[option.key])
                return _hover(f"`{layer.word}` option `{option.key}`: {summary}", positions, option.span)
        for arg in layer.args:
            if isinstance(arg, ast.Name) and contains(arg.span, line, column):
                activation = REGISTRY.lookup(arg.name)
                if activation is not None and activation.is_activation:
                    return _hover(f"activation **{arg.name}**: {activation.doc}", positions, arg.span)
    for block in blocks.values():
        if contains(block.span, line, column):
            return _hover(_block_text(block, []), positions, block.span)
    return None


def _hover(markdown: str, positions: Positions, span) -> types.Hover:
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=markdown),
                       range=positions.range(span))


def _tensor_text(analysis: Analysis, symbol: Symbol) -> str:
    shape = analysis.tensor_types.get(symbol.name)
    defined = analysis.symbols.definition(symbol)
    parts = [f"tensor **{symbol.name}**", f": `{shape_text(shape)}`" if shape else "",
             f", defined at line {defined.line}" if defined else ""]
    return "".join(parts)


def _kind_text(word: str, infos: list[LayerInfo]) -> str | None:
    kind = REGISTRY.lookup(word)
    if kind is None:
        return None
    title = f"**{word}**" if word == kind.name else f"**{word}** (`{kind.name}`)"
    parts = [f"{title}: {kind.doc}", *_example(kind), *_instances(infos)]
    return "\n\n".join(parts)


def _block_text(block: ast.BlockDef, infos: list[LayerInfo]) -> str:
    params = ", ".join(p.name for p in block.params)
    return "\n\n".join([f"block **{block.name}**({params}), defined at line {block.span.line}", *_instances(infos)])


def _example(kind: LayerKind) -> list[str]:
    return [f"example: `{kind.example}`"] if kind.example else []


def _instances(infos: list[LayerInfo]) -> list[str]:
    """The facts of each time inference met the layer (once, or once per block use)."""
    if not infos:
        return []
    facts = [layer_facts(info) for info in infos]
    if len(set(facts)) == 1:
        uses = f" (each of its {len(infos)} instances)" if len(infos) > 1 else ""
        return [f"output {facts[0]}{uses}"]
    lines = [f"- `{info.path}`: {text}" for info, text in zip(infos, facts)][:MAX_INSTANCES_SHOWN]
    if len(infos) > MAX_INSTANCES_SHOWN:
        lines.append(f"- ... and {len(infos) - MAX_INSTANCES_SHOWN} more")
    return ["\n".join(lines)]

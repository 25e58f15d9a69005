"""Completion from the text around the cursor, so that it works on a line still being
typed (which does not parse): layer words, blocks, keywords and tensor names where a layer
starts (also after `NAME =`); the options of the kind being written, their values and
activation words after it (and tensor names after a merge word); tensor names after
`output`; block parameters inside a block; the keys and values of the `train { }` section."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import get_args

from lsprotocol import types

from .. import ast
from ..ir import InputKind
from ..layers import REGISTRY
from ..layers.base import LayerKind
from ..train_config import TrainConfig
from .positions import Positions
from .schema import field_summary, value_words
from .textscan import Braces, code_before, in_comment_or_string

# Words the grammar and elaboration give meaning to, with what they start.
TOP_LEVEL_KEYWORDS = {
    "model": "model NAME: the model's name",
    "input": "input KIND SIZES: image CxHxW, vector N, sequence TxF, tokens T vocab=V",
    "block": "block NAME(params) { ... }: a named, parameterized sub-stack",
    "train": "train { key=value ... }: how `specc train` trains the model",
    "output": "output NAME ...: the model's outputs, in order",
}
REPEAT = ("repeat", "repeat N { ... }: the body N times in a row")
_BLOCK_HEAD = re.compile(r"block\s+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Place:
    """What the cursor is in: the enclosing bodies' first words (innermost first), the
    words already written in the current layer, and the word being typed."""

    openers: tuple[str, ...]
    words: tuple[str, ...]
    typed: str


def complete(braces: Braces, spec: ast.SpecFile | None, positions: Positions,
             position: types.Position) -> list[types.CompletionItem]:
    """Items for the cursor at `position`; `braces` and `positions` are of the current text,
    `spec` the newest AST (possibly of an earlier text) for block names."""
    line, column = positions.locate(position)
    prefix = positions.lines[line - 1][: column - 1]
    if in_comment_or_string(prefix):
        return []
    place = _place(braces, positions, line, prefix)
    blocks = {s.name: s for s in spec.statements if isinstance(s, ast.BlockDef)} if spec else {}
    in_block = next((blocks[m.group(1)] for m in map(_BLOCK_HEAD.match, place.openers)
                     if m and m.group(1) in blocks), None)
    parameters = [_parameter_item(p.name, in_block.name) for p in in_block.params] if in_block else []
    if place.openers and _first_word(place.openers[0]) == "train":
        return _train_items(place)
    tensors = [] if place.openers else _tensor_items(spec)
    named = not place.openers and place.words[1:2] == ("=",)
    if named:  # `a = ...`: a chain starts after the name
        place = Place(place.openers, place.words[2:], place.typed)
    if not place.words:
        return _statement_items(place, blocks, keywords=not named) + tensors
    word = place.words[0]
    if word == "output" and not place.openers:
        return tensors
    if word == "input":
        return [_item(k, types.CompletionItemKind.EnumMember, "input kind") for k in get_args(InputKind)] \
            if len(place.words) == 1 else []
    if word in blocks:
        if "=" in place.typed:
            return parameters
        return [_item(p.name, types.CompletionItemKind.Property, f"parameter of block {word}", insert=f"{p.name}=")
                for p in blocks[word].params] + parameters
    kind = REGISTRY.lookup(word)
    if kind is None:
        return []
    if "=" in place.typed:
        key = place.typed.split("=", 1)[0]
        field = kind.params.model_fields.get(key)
        words = value_words(field, key) if field else []
        return [_item(w, types.CompletionItemKind.EnumMember, key) for w in words] + parameters
    merges = tensors if kind.layout is not None and kind.layout.merge and kind.layout.form == "branches" else []
    return _option_items(kind, place) + parameters + merges


def _tensor_items(spec: ast.SpecFile | None) -> list[types.CompletionItem]:
    """The tensors a top-level line can read: the inputs' names and each `NAME =`."""
    if spec is None:
        return []
    inputs = [s for s in spec.statements if isinstance(s, ast.InputDecl)]
    names = [str(ast.plain(o.value)) for s in inputs for o in s.options if o.key == "name"]
    if len(inputs) == 1 and not names:
        names = ["input"]
    names += [s.name for s in spec.statements if isinstance(s, ast.Assignment)]
    return [_item(name, types.CompletionItemKind.Variable, "tensor") for name in dict.fromkeys(names)]


def _place(braces: Braces, positions: Positions, line: int, prefix: str) -> Place:
    source = positions.source
    offset = positions.offset(line, len(prefix) + 1)
    openers = []
    opener = braces.enclosing(offset)
    while opener is not None:
        openers.append(_segment(source[source.rfind("\n", 0, opener) + 1 : opener]).strip())
        opener = braces.enclosing(opener)
    text = prefix
    previous = line - 1
    while previous >= 1 and code_before(positions.lines[previous - 1]).rstrip().endswith("\\"):
        text = code_before(positions.lines[previous - 1]).rstrip()[:-1] + " " + text
        previous -= 1
    segment = _segment(text)
    words = segment.split()
    typed = "" if not segment or segment[-1].isspace() else words.pop()
    return Place(tuple(openers), tuple(words), typed)


def _segment(text: str) -> str:
    """The text after the last `->`, `;`, `{` or `}`: the layer being written."""
    ends = [text.rfind("->") + 2 if "->" in text else 0, *(text.rfind(c) + 1 for c in ";{}")]
    return text[max(ends):]


def _first_word(text: str) -> str:
    return text.split()[0] if text.split() else ""


def _statement_items(place: Place, blocks: dict[str, ast.BlockDef], keywords: bool = True) -> list[types.CompletionItem]:
    items = [_kind_item(word, REGISTRY.lookup(word)) for word in REGISTRY.words()]
    items += [_item(name, types.CompletionItemKind.Module, f"block {name}({', '.join(p.name for p in b.params)})")
              for name, b in blocks.items()]
    items.append(_item(REPEAT[0], types.CompletionItemKind.Keyword, REPEAT[1]))
    if not place.openers:
        items += [_item(k, types.CompletionItemKind.Keyword, doc) for k, doc in TOP_LEVEL_KEYWORDS.items() if keywords]
    else:
        owner = REGISTRY.lookup(_first_word(place.openers[0]))
        if owner is not None and owner.layout is not None and owner.layout.marker:
            items.append(_item(owner.layout.marker, types.CompletionItemKind.Keyword,
                               f"{owner.layout.marker} {{ ... }}: a body of `{owner.name}`"))
    return items


def _option_items(kind: LayerKind, place: Place) -> list[types.CompletionItem]:
    given = {w.split("=", 1)[0] for w in place.words[1:] if "=" in w}
    items = [_item(name, types.CompletionItemKind.Property, field_summary(field, name), insert=f"{name}=")
             for name, field in kind.params.model_fields.items() if name not in given]
    activations = REGISTRY.activations()
    if kind.takes_activation and "activation" not in given and not any(w in activations for w in place.words[1:]):
        items += [_item(a, types.CompletionItemKind.EnumMember, "activation", REGISTRY.lookup(a).doc)
                  for a in activations]
    return items


def _train_items(place: Place) -> list[types.CompletionItem]:
    if "=" in place.typed:
        key = place.typed.split("=", 1)[0]
        field = TrainConfig.model_fields.get(key)
        return [_item(w, types.CompletionItemKind.EnumMember, key) for w in (value_words(field, key) if field else [])]
    given = {w.split("=", 1)[0] for w in place.words if "=" in w}
    return [_item(name, types.CompletionItemKind.Property, field_summary(field, name), insert=f"{name}=")
            for name, field in TrainConfig.model_fields.items() if name not in given]


def _kind_item(word: str, kind: LayerKind) -> types.CompletionItem:
    detail = kind.name if word != kind.name else kind.category
    documentation = kind.doc + (f"\n\nexample: `{kind.example}`" if kind.example else "")
    return _item(word, types.CompletionItemKind.Class, detail, documentation)


def _parameter_item(name: str, block: str) -> types.CompletionItem:
    return _item(name, types.CompletionItemKind.Variable, f"parameter of block {block}")


def _item(label: str, kind: types.CompletionItemKind, detail: str, documentation: str | None = None,
          insert: str | None = None) -> types.CompletionItem:
    return types.CompletionItem(
        label=label, kind=kind, detail=detail, insert_text=insert,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=documentation) if documentation else None,
    )

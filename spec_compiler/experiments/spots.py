"""Where a value can be set in a spec's source: the keys `--set` and search values use.

A key names a spot in the text, so an override or a trial's value is an edit of the source,
which is then checked like any spec (its errors point at the edited line):

- `train.KEY`: a key of `train { }` (written or not);
- `BLOCK.PARAM`: the default of a block's parameter;
- `LAYER.FIELD`: a field of a layer, positional or `key=value`, where LAYER is the layer's
  `name=` or its word and count in the file (`dense_2`: the second `dense` written);
- `PARAM`: a block parameter's default, when exactly one block has a parameter so named.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .. import ast
from ..errors import Span
from ..layers import REGISTRY


@dataclass(frozen=True)
class Edit:
    """Replace columns [start, end) of a 1-based line by `text` (start == end: insert)."""

    line: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Spot:
    """A settable place: the value written there (None: not written) and how to add one."""

    key: str
    value: ast.Value | None
    insert: Edit | None  # the edit that writes a value where none is written ("{}": the value)

    def edit(self, lines: list[str], text: str) -> Edit:
        if self.value is not None:
            line, start, end = extent(lines, self.value)
            return Edit(line, start, end, text)
        assert self.insert is not None
        return Edit(self.insert.line, self.insert.start, self.insert.end, self.insert.text.format(text))


def extent(lines: list[str], value: ast.Value) -> tuple[int, int, int]:
    """(line, start, end) columns of a value's whole text: a call or list runs to its closing bracket."""
    span = value.span
    line = lines[span.line - 1]
    if isinstance(value, (ast.Call, ast.ListValue)):
        depth, column = 0, span.column - 1
        while column < len(line):
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(line[column], 0)
            column += 1
            if depth == 0 and line[column - 1] in ")]":
                break
        return span.line, span.column, column + 1
    return span.line, span.column, span.end_column or span.column + 1


def apply_edits(source: str, edits: list[Edit]) -> str:
    """The source with the edits made (right to left on each line, so columns stay true)."""
    lines = source.split("\n")
    for edit in sorted(edits, key=lambda e: (e.line, e.start), reverse=True):
        text = lines[edit.line - 1]
        lines[edit.line - 1] = text[: edit.start - 1] + edit.text + text[edit.end - 1:]
    return "\n".join(lines)


def spots(spec: ast.SpecFile) -> dict[str, list[Spot]]:
    """Every key of the spec, each with the spots it names (more than one: an ambiguous key)."""
    found: dict[str, list[Spot]] = {}
    for spot in _all_spots(spec):
        found.setdefault(spot.key, []).append(spot)
    return found


def _all_spots(spec: ast.SpecFile) -> Iterator[Spot]:
    yield from _train_spots(spec)
    blocks = [s for s in spec.statements if isinstance(s, ast.BlockDef)]
    for block in blocks:
        for param in block.params:
            insert = Edit(param.span.line, param.span.end_column, param.span.end_column, "={}")
            for key in (f"{block.name}.{param.name}", param.name):
                yield Spot(key, param.default, insert)
    counts: dict[str, int] = {}
    for layer in layers_in_order(spec.statements):
        counts[layer.word] = counts.get(layer.word, 0) + 1
        name = layer_name(layer, counts[layer.word])
        for field, value in layer_fields(layer, blocks).items():
            yield Spot(f"{name}.{field}", value, None)
        block = next((b for b in blocks if b.name == layer.word), None)
        fields = [p.name for p in block.params] if block else _kind_fields(layer.word)
        after_word = Edit(layer.span.line, layer.span.end_column, layer.span.end_column, "")
        for field in fields:
            if field not in layer_fields(layer, blocks):
                yield Spot(f"{name}.{field}", None, Edit(after_word.line, after_word.start, after_word.end,
                                                         f" {field}={{}}"))


def _train_spots(spec: ast.SpecFile) -> Iterator[Spot]:
    """`train.KEY`; a key not written is added after the section's `{` (the spec must have a
    section: see overrides.with_train_section)."""
    section = next((s for s in spec.statements if isinstance(s, ast.TrainSection)), None)
    if section is None:
        return
    from ..train_config import TrainConfig  # only for a spec with a train section

    written = {o.key: o.value for o in section.options}
    line = spec.source.split("\n")[section.span.line - 1]
    brace = line.index("{", section.span.column - 1) + 2
    for key in TrainConfig.model_fields:
        yield Spot(f"train.{key}", written.get(key), Edit(section.span.line, brace, brace, f" {key}={{}};"))


def layers_in_order(statements) -> Iterator[ast.Layer]:
    """Every layer as written, in source order (block bodies and nested bodies included)."""
    for statement in statements:
        if isinstance(statement, ast.Chain):
            for layer in statement.layers:
                yield layer
                yield from layers_in_order(layer.body or ())
        elif isinstance(statement, ast.Layer):
            yield statement
            yield from layers_in_order(statement.body or ())
        elif isinstance(statement, ast.BlockDef):
            yield from layers_in_order(statement.body)


def layer_name(layer: ast.Layer, count: int) -> str:
    """The layer's `name=` when written as a word, else its word and count (`dense_2`)."""
    for option in layer.options:
        if option.key == "name" and isinstance(option.value, (ast.Name, ast.String)):
            return ast.plain(option.value)
    return f"{layer.word}_{count}"


def _kind_fields(word: str) -> list[str]:
    kind = REGISTRY.lookup(word)
    return list(kind.params.model_fields) if kind is not None else []


def layer_fields(layer: ast.Layer, blocks: list[ast.BlockDef]) -> dict[str, ast.Value]:
    """The values written for a layer's fields: options by key, positional arguments by the
    slot they fill (the first size of `6x5x5` fills `filters`; `5x5`, the rest, `kernel`)."""
    fields: dict[str, ast.Value] = {}
    block = next((b for b in blocks if b.name == layer.word), None)
    kind = REGISTRY.lookup(layer.word)
    args = list(layer.args)
    if block is not None:
        fields.update(zip((p.name for p in block.params), args))
    elif kind is not None:
        if kind.takes_activation and args and isinstance(args[-1], ast.Name) and args[-1].name in REGISTRY.activations():
            fields["activation"] = args.pop()
        queue = list(args)
        for slot in kind.slots:
            if not queue:
                break
            arg = queue.pop(0)
            if isinstance(arg, ast.Dims) and slot.takes == "scalar" and len(arg.items) > 1:
                width = len(str(arg.items[0]))
                span = arg.span
                fields[slot.field] = ast.Number(arg.items[0], Span(span.file, span.line, span.column,
                                                                          span.column + width))
                queue.insert(0, ast.Dims(arg.items[1:], Span(span.file, span.line, span.column + width + 1,
                                                                   span.end_column)))
            else:
                fields[slot.field] = arg
    for option in layer.options:
        fields.setdefault(option.key, option.value)
    return fields

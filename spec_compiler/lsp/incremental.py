"""Parsing a document statement by statement, reusing the statements of text that did not
change: an edit to one line of a 1,000-layer file re-parses that line's statement only,
and statements that only moved (a line inserted above them) get their spans moved.

Each top-level statement is parsed on its own, preceded by as many blank lines as come
before it so that its spans are those of the whole file. When any statement fails to
parse, the whole text is parsed as `specc compile` parses it, so that syntax errors are
reported exactly as the CLI reports them.
"""

from __future__ import annotations

from dataclasses import fields

from .. import ast
from ..errors import Span, SpecError
from ..parser import braces, parse
from .textscan import code_before


class IncrementalParser:
    def __init__(self):
        self._statements: dict[tuple[str, int, str], tuple] = {}  # (path, first line, text) -> statements
        self._moved: dict[tuple[str, str], tuple[int, tuple]] = {}  # (path, text) -> one (first line, statements)

    def parse(self, source: str, path: str) -> ast.SpecFile:
        """The same AST as `parser.parse(source, path)`; raises the same SpecError."""
        kept: dict[tuple[str, int, str], tuple] = {}
        moved: dict[tuple[str, str], tuple[int, tuple]] = {}
        statements: list = []
        for first_line, text in statement_chunks(source):
            key = (path, first_line, text)
            found = self._statements.get(key)
            if found is None and (path, text) in self._moved:
                was, parsed = self._moved[path, text]
                found = shifted(parsed, first_line - was)
            if found is None:
                try:
                    found = parse("\n" * (first_line - 1) + text, path).statements
                except (SpecError, RecursionError):  # the whole parse reports it as the CLI does
                    self._statements, self._moved = {}, {}
                    return parse(source, path)
            kept[key] = found
            moved[path, text] = (first_line, found)
            statements.extend(found)
        self._statements, self._moved = kept, moved
        return ast.SpecFile(path, source, tuple(statements))


def shifted(node, lines: int):
    """An AST node (or a tuple of them) with every span moved down by `lines`."""
    if isinstance(node, tuple):
        return tuple(shifted(item, lines) for item in node)
    if isinstance(node, Span):
        return Span(node.file, node.line + lines, node.column, node.end_column)
    if node is None or isinstance(node, (str, int, float)):
        return node
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = tuple(f.name for f in fields(node))
    return type(node)(*(shifted(getattr(node, name), lines) for name in names))


_FIELDS: dict[type, tuple[str, ...]] = {}  # an AST class's fields, looked up once


def statement_chunks(source: str) -> list[tuple[int, str]]:
    """The text split into runs of whole lines, each starting with a top-level statement:
    a line outside any `{ }`, not continuing the line before it (which would end with `->`
    or a backslash) and not starting with `->`. Blank and comment lines stay with the
    statement above them. Returns (first line, text) pairs."""
    lines = source.split("\n")
    depth_at = _depth_at_line_starts(source, len(lines))
    chunks: list[tuple[int, list[str]]] = []
    continues = False
    for number, line in enumerate(lines, start=1):
        code = code_before(line).strip()
        starts = bool(code) and depth_at[number - 1] == 0 and not continues and not code.startswith("->")
        if starts or not chunks:
            chunks.append((number, []))
        chunks[-1][1].append(line)
        if code:
            continues = code.endswith(("->", "\\"))
    return [(first, "\n".join(text)) for first, text in chunks]


def _depth_at_line_starts(source: str, count: int) -> list[int]:
    """How many `{` are open where each line starts."""
    depth_at = [0] * count
    depth, line, position = 0, 0, 0
    for offset, char in braces(source):
        while True:
            newline = source.find("\n", position, offset)
            if newline < 0:
                break
            line += 1
            depth_at[line] = depth
            position = newline + 1
        depth += 1 if char == "{" else -1
    while line + 1 < count:
        line += 1
        depth_at[line] = depth
    return depth_at

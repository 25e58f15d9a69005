"""Between specc's spans and LSP positions.

specc counts 1-based lines and columns in characters (lark's counting); LSP counts
0-based lines and, unless the client negotiated otherwise, UTF-16 code units. They
differ on characters outside the Basic Multilingual Plane, so every conversion goes
through the codec pygls negotiated with the client.
"""

from __future__ import annotations

from bisect import bisect_right

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from ..errors import Span


class Positions:
    """One document's text, split into lines the way lark numbers them."""

    def __init__(self, source: str, codec: PositionCodec | None = None):
        self.source = source
        self.lines = source.split("\n")
        self.codec = codec or PositionCodec()
        starts = [0]
        for line in self.lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        self.line_starts = starts

    # --- specc (1-based, characters) to LSP ---------------------------------------------

    def position(self, line: int, column: int) -> types.Position:
        """The LSP position of a 1-based line and character column (clamped into the text)."""
        index = min(max(line, 1), len(self.lines)) - 1
        text = self.lines[index]
        character = min(max(column, 1) - 1, len(text))
        return types.Position(line=index, character=self.codec.client_num_units(text[:character]))

    def range(self, span: Span | None) -> types.Range:
        """Where a diagnostic's caret goes: the span, or one character where it has no end
        (as the CLI draws it); the file's start when there is no span at all."""
        if span is None:
            return types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
        end = span.end_column or span.column + 1
        return types.Range(start=self.position(span.line, span.column), end=self.position(span.line, end))

    def offset_range(self, start: int, end: int) -> types.Range:
        return types.Range(start=self.position(*self.line_column(start)), end=self.position(*self.line_column(end)))

    def line_end(self, line: int) -> types.Position:
        """The end of a 1-based line's text, trailing blanks and carriage return left out."""
        return self.position(line, len(self.lines[line - 1].rstrip()) + 1)

    # --- LSP to specc -------------------------------------------------------------------

    def locate(self, position: types.Position) -> tuple[int, int]:
        """The 1-based line and character column of an LSP position."""
        if position.line >= len(self.lines):
            return len(self.lines), len(self.lines[-1]) + 1
        text = self.lines[position.line]
        units = 0
        for index, char in enumerate(text):
            if units >= position.character:
                return position.line + 1, index + 1
            units += self.codec.client_num_units(char)
        return position.line + 1, len(text) + 1

    # --- offsets ------------------------------------------------------------------------

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column - 1

    def line_column(self, offset: int) -> tuple[int, int]:
        index = bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def span_text(self, span: Span) -> str:
        text = self.lines[span.line - 1]
        return text[span.column - 1 : (span.end_column or span.column + 1) - 1]


def contains(span: Span, line: int, column: int) -> bool:
    """Whether a cursor at (line, column) touches the span (its end included: a cursor
    just after a word is on that word)."""
    return span.line == line and span.column <= column <= (span.end_column or span.column + 1)

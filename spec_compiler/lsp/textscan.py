"""Where things are in a document's text: matching braces, the end of a layer, the body
around the cursor. Editor features need these positions; the AST keeps only where each
word starts."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from ..parser import braces

_STOPS = {";", "\n", "{", "}", "#"}


@dataclass(frozen=True)
class Braces:
    """Each `{` with its matching `}` (None when the file ends first), in text order."""

    opens: tuple[int, ...]
    closes: tuple[int | None, ...]

    @classmethod
    def of(cls, source: str) -> Braces:
        opens: list[int] = []
        closes: list[int | None] = []
        stack: list[int] = []
        for offset, char in braces(source):
            if char == "{":
                stack.append(len(opens))
                opens.append(offset)
                closes.append(None)
            elif stack:
                closes[stack.pop()] = offset
        return cls(tuple(opens), tuple(closes))

    def body_after(self, offset: int) -> tuple[int, int | None] | None:
        """The first `{ ... }` that opens at or after `offset`: (open, close)."""
        index = bisect_left(self.opens, offset)
        return (self.opens[index], self.closes[index]) if index < len(self.opens) else None

    def enclosing(self, offset: int) -> int | None:
        """The `{` of the innermost body that holds `offset`, or None at the top level."""
        for index in range(bisect_right(self.opens, offset - 1) - 1, -1, -1):
            close = self.closes[index]
            if close is None or close >= offset:
                return self.opens[index]
        return None


def layer_end(source: str, offset: int) -> int:
    """Where a layer without a body, starting at `offset`, ends: before the next `->`,
    `;`, line end, brace or comment outside strings and brackets (blanks left out)."""
    return _scan(source, offset, stop_at_blank=False)


def value_end(source: str, offset: int) -> int:
    """Where the value starting at `offset` ends (`l2(0.01)`, `[acc, top5]`, `6x5x5`)."""
    return _scan(source, offset, stop_at_blank=True)


def _scan(source: str, offset: int, stop_at_blank: bool) -> int:
    depth = 0
    quote = None
    index = offset
    while index < len(source):
        char = source[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif depth <= 0 and stop_at_blank and char in " \t\r":
            break
        elif depth <= 0 and (char in _STOPS or source.startswith("->", index)):
            if char == "\n" and source[:index].rstrip(" \t\r").endswith("\\"):
                index += 1  # a line continued with a backslash
                continue
            break
        index += 1
    while index > offset and source[index - 1] in " \t\r\\":
        index -= 1
    return index


def code_before(line: str) -> str:
    """A line's text up to a comment (a `#` outside a string)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def in_comment_or_string(line_prefix: str) -> bool:
    """Whether the end of `line_prefix` is inside a comment or a string."""
    quote = None
    for char in line_prefix:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            return True
    return quote is not None

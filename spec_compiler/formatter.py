"""`specc fmt`: print a spec in its canonical layout, keeping every comment.

The layout: one statement per line, ` -> ` between chained layers, `key=value`
options, two-space indentation inside `{ }`, short bodies on one line. Numbers and
strings keep the spelling the user wrote (`1e-3` stays `1e-3`).

Comments are not in the AST, so they are put back once the layout is made: each output
line knows the source lines it holds. A comment after code joins the output line that
holds its line (a chain written over several lines becomes one line carrying all their
comments); a comment on a line of its own goes before the first output line that comes
from a later source line, indented like it (one level deeper before a closing `}`).
No comment is dropped: after a `}`, on a continuation line, after the train section.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from . import ast
from .parser import brace_pairs, parse

INDENT = "  "
MAX_WIDTH = 88


def format_source(source: str, path: str = "<spec>") -> str:
    spec = parse(source, path)
    return _Formatter(spec.source).file(spec.statements)  # the normalized source the spans refer to


@dataclass(frozen=True)
class Line:
    """One output line and the source lines it holds (a kept blank line: that line)."""

    text: str
    first: int
    last: int


class _Formatter:
    def __init__(self, source: str):
        self.lines = source.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.comments = _comments(self.lines)  # line -> (comment text, is the whole line)
        self.pairs = brace_pairs(source)
        self.opens = sorted(self.pairs)
        self.rendered: dict[tuple[int, int], list[Line]] = {}

    # --- source positions ---------------------------------------------------------

    def line_of(self, offset: int) -> int:
        return bisect_right(self.starts, offset)

    def braces(self, span) -> tuple[int, int]:
        """Lines of the `{` and `}` of the body that follows the word at `span`."""
        opening = self.opens[bisect_left(self.opens, self.starts[span.line - 1] + span.column - 1)]
        return self.line_of(opening), self.line_of(self.pairs[opening])

    # --- values -------------------------------------------------------------------

    def text(self, span) -> str:
        line = self.lines[span.line - 1]
        return line[span.column - 1 : span.end_column - 1] if span.end_column else line[span.column - 1 :]

    def value(self, value: ast.Value) -> str:
        if isinstance(value, (ast.Number, ast.Dims, ast.String)):
            return self.text(value.span)
        if isinstance(value, ast.Name):
            return value.name
        if isinstance(value, ast.Unknown):
            return "?"
        if isinstance(value, ast.ListValue):
            return "[" + ", ".join(self.value(v) for v in value.items) + "]"
        if isinstance(value, ast.Call):
            parts = [self.value(v) for v in value.args] + [self.option(o) for o in value.options]
            return f"{value.name}(" + ", ".join(parts) + ")"
        if _copyable(value):  # an expression on one line: as written, spaces and all
            return self.text(value.span)
        if isinstance(value, ast.Binary):
            return f"{self.value(value.left)}{value.operator}{self.value(value.right)}"
        if isinstance(value, ast.Negate):
            return f"-{self.value(value.operand)}"
        if isinstance(value, ast.Group):
            return f"({self.value(value.inner)})"
        if isinstance(value, ast.Size):
            return "x".join(map(self.value, value.factors))
        raise TypeError(value)

    def option(self, option: ast.Option) -> str:
        return f"{option.key}={self.value(option.value)}"

    # --- statements ---------------------------------------------------------------

    def file(self, statements) -> str:
        out = self.with_comments(self.body_lines(statements, 0))
        return "\n".join(_collapse_blanks(out)).strip("\n") + "\n"

    def body_lines(self, statements, depth: int) -> list[Line]:
        out: list[Line] = []
        previous_end = None
        for statement in statements:
            rendered = self.statement(statement, depth)
            blank = None if previous_end is None else self._blank_between(previous_end, rendered[0].first)
            if blank is not None:
                out.append(Line("", blank, blank))
            out += rendered
            previous_end = max(line.last for line in rendered)
        return out

    def statement(self, statement, depth: int) -> list[Line]:
        pad = INDENT * depth
        if isinstance(statement, ast.ModelDecl):
            return [Line(f"{pad}model {statement.name}", statement.span.line, statement.span.line)]
        if isinstance(statement, ast.InputDecl):
            words = ["input", statement.kind, *map(self.value, statement.args), *map(self.option, statement.options)]
            last = _last_line(statement.span, statement.args, statement.options)
            return [Line(pad + " ".join(words), statement.span.line, last)]
        if isinstance(statement, ast.TrainSection):
            opening, closing = self.braces(statement.span)
            inner = INDENT * (depth + 1)
            options = [Line(inner + self.option(o), o.span.line, _last_line(o.span, (), (o,)))
                       for o in statement.options]
            return [Line(f"{pad}train {{", statement.span.line, opening), *options, Line(f"{pad}}}", closing, closing)]
        if isinstance(statement, ast.BlockDef):
            params = ", ".join(p.name + (f"={self.value(p.default)}" if p.default is not None else "")
                               for p in statement.params)
            defaults = tuple(p.default for p in statement.params if p.default is not None)
            head = Line(f"{pad}block {statement.name}({params})", statement.span.line,
                        _last_line(statement.span, defaults, ()))
            return self.with_body(head, statement.body, depth, self.braces(statement.span), inline=False)
        if isinstance(statement, ast.OutputDecl):
            words = ["output", *(name.name for name in statement.names)]
            return [Line(pad + " ".join(words), statement.span.line, statement.names[-1].span.line)]
        if isinstance(statement, ast.Assignment):
            lines = self.chain(statement.chain, depth)
            first = lines[0]
            named = Line(f"{pad}{statement.name} = {first.text[len(pad):]}", min(statement.span.line, first.first),
                         first.last)
            return [named, *lines[1:]]
        return self.chain(statement, depth)

    def chain(self, chain: ast.Chain, depth: int) -> list[Line]:
        # Remembered: trying the one-line form of a body renders it at depth 0 as well, which
        # without this would double the work at every level of nesting.
        key = (id(chain), depth)
        if key not in self.rendered:
            self.rendered[key] = self._chain(chain, depth)
        return list(self.rendered[key])

    def _chain(self, chain: ast.Chain, depth: int) -> list[Line]:
        out: list[Line] = []
        for layer in chain.layers:
            words = " ".join([layer.word, *map(self.value, layer.args), *map(self.option, layer.options)])
            last = _last_line(layer.span, layer.args, layer.options)
            if out:  # joined to the line before with ` -> `
                previous = out.pop()
                head = Line(f"{previous.text} -> {words}", previous.first, max(previous.last, last))
            else:
                head = Line(INDENT * depth + words, layer.span.line, last)
            if layer.body is None:
                out.append(head)
            else:
                out += self.with_body(head, layer.body, depth, self.braces(layer.span), inline=True)
        return out

    def with_body(self, head: Line, body, depth: int, braces: tuple[int, int], inline: bool) -> list[Line]:
        opening, closing = braces
        commented = any(opening <= line < closing for line in self.comments)  # comments inside the braces
        if not body and not commented:
            return [Line(head.text + " {}", head.first, closing)]
        if inline and not commented and len(body) == 1 and isinstance(body[0], ast.Chain):
            one = self.chain(body[0], 0)
            if len(one) == 1 and len(head.text) + len(one[0].text) + 6 <= MAX_WIDTH:
                return [Line(f"{head.text} {{ {one[0].text} }}", head.first, closing)]
        inner = self.body_lines(body, depth + 1)
        return [Line(head.text + " {", head.first, max(head.last, opening)), *inner,
                Line(INDENT * depth + "}", closing, closing)]

    # --- comments -----------------------------------------------------------------

    def with_comments(self, lines: list[Line]) -> list[str]:
        """The output lines with every source comment put back (see the module docstring)."""
        firsts = [line.first for line in lines]
        before: dict[int, list[tuple[int, str]]] = {}  # output line -> (source line, comment) to put before it
        after: dict[int, list[str]] = {}
        tail: list[tuple[int, str]] = []
        for number, (comment, whole) in sorted(self.comments.items()):
            if not whole:
                index = bisect_right(firsts, number) - 1
                while index >= 0 and not lines[index].text:
                    index -= 1
                if index >= 0:
                    after.setdefault(index, []).append(comment)
                    continue
            index = bisect_right(firsts, number)  # the first output line from a later source line
            if index < len(lines):
                before.setdefault(index, []).append((number, comment))
            else:
                tail.append((number, comment))
        out: list[str] = []
        shown = 0  # the last source line shown so far: blank lines around comments are kept
        for index, line in enumerate(lines):
            if index in before:
                indent = _indent_before(lines, index)
                for number, comment in before[index]:
                    self._keep_blank(out, shown, number)
                    out.append(indent + comment)
                    shown = number
                self._keep_blank(out, shown, line.first)
            out.append(line.text + "".join(f"  {comment}" for comment in after.get(index, [])))
            shown = max(shown, line.last)
        for number, comment in tail:
            self._keep_blank(out, shown, number)
            out.append(comment)
            shown = number
        return out

    def _keep_blank(self, out: list[str], shown: int, number: int) -> None:
        """A blank line where the source has one between line `shown` and line `number`."""
        if out and not out[-1].endswith("{") and self._blank_between(shown, number) is not None:
            out.append("")

    def _blank_between(self, end: int, start: int) -> int | None:
        """The first blank source line between two statements, if any."""
        for number in range(end + 1, start):
            if 0 < number <= len(self.lines) and not self.lines[number - 1].strip():
                return number
        return None


def _indent_before(lines: list[Line], index: int) -> str:
    """Indentation of a comment line put before lines[index]: that of the next line of code,
    one level deeper when it closes a body (the comment was inside it)."""
    following = next((line.text for line in lines[index:] if line.text), "")
    indent = following[: len(following) - len(following.lstrip())]
    return indent + INDENT if following.lstrip().startswith("}") else indent


def _copyable(value) -> bool:
    """Whether an expression's span holds all its text: it is on one line and holds no call or
    list (whose spans end at their first character)."""
    return value.span.end_column is not None and _spans_its_text(value)


def _spans_its_text(value) -> bool:
    return not isinstance(value, (ast.Call, ast.ListValue)) and all(map(_spans_its_text, ast.operands(value)))


def _last_line(span, values, options) -> int:
    """The last source line among a word and its values (a `\\` continues a line)."""
    last = span.line
    for value in (*values, *(o.value for o in options)):
        last = max(last, _value_last_line(value))
    for option in options:
        last = max(last, option.span.line)
    return last


def _value_last_line(value) -> int:
    return max((value.span.line, *map(_value_last_line, ast.operands(value))))


_COMMENT = re.compile(r"""^((?:[^#"']|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')*)(#.*)$""")


def _comments(lines: list[str]) -> dict[int, tuple[str, bool]]:
    found = {}
    for number, line in enumerate(lines, start=1):
        match = _COMMENT.match(line)
        if match:
            found[number] = (match.group(2).rstrip(), not match.group(1).strip())
    return found


def _collapse_blanks(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line.rstrip())
    return out

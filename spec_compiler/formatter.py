"""`specc fmt`: print a spec in its canonical layout, keeping every comment.

The layout: one statement per line, ` -> ` between chained layers, `key=value`
options, two-space indentation inside `{ }`, short bodies on one line. Numbers and
strings keep the spelling the user wrote (`1e-3` stays `1e-3`).
"""

from __future__ import annotations

import re

from . import ast
from .parser import parse

INDENT = "  "
MAX_WIDTH = 88


def format_source(source: str, path: str = "<spec>") -> str:
    spec = parse(source, path)
    return _Formatter(source).file(spec.statements)


class _Formatter:
    def __init__(self, source: str):
        self.lines = source.splitlines()
        self.comments = _comments(self.lines)  # line -> (comment text, is whole line)
        self.emitted: set[int] = set()

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
        raise TypeError(value)

    def option(self, option: ast.Option) -> str:
        return f"{option.key}={self.value(option.value)}"

    # --- statements ---------------------------------------------------------------

    def file(self, statements) -> str:
        out = self.body_lines(statements, 0)
        out += [c for c in self.leftover_comments(len(self.lines) + 1, 0)]
        return "\n".join(_collapse_blanks(out)).strip("\n") + "\n"

    def body_lines(self, statements, depth: int) -> list[str]:
        out: list[str] = []
        previous_end = None
        for statement in statements:
            line = _first_line(statement)
            if previous_end is not None and self._blank_between(previous_end, line):
                out.append("")
            out += self.leftover_comments(line, depth)
            rendered = self.statement(statement, depth)
            trailing = self.trailing_comment(line)
            if trailing:
                rendered[0] = f"{rendered[0]}  {trailing}"
            out += rendered
            previous_end = _last_line(statement, self.lines)
        return out

    def statement(self, statement, depth: int) -> list[str]:
        pad = INDENT * depth
        if isinstance(statement, ast.ModelDecl):
            return [f"{pad}model {statement.name}"]
        if isinstance(statement, ast.InputDecl):
            words = ["input", statement.kind, *map(self.value, statement.args), *map(self.option, statement.options)]
            return [pad + " ".join(words)]
        if isinstance(statement, ast.TrainSection):
            inner = INDENT * (depth + 1)
            options = [inner + self.option(o) for o in statement.options]
            return [f"{pad}train {{", *options, f"{pad}}}"]
        if isinstance(statement, ast.BlockDef):
            params = ", ".join(p.name + (f"={self.value(p.default)}" if p.default is not None else "")
                               for p in statement.params)
            return self.with_body(f"{pad}block {statement.name}({params})", statement.body, depth, inline=False)
        return self.chain(statement, depth)

    def chain(self, chain: ast.Chain, depth: int) -> list[str]:
        pad = INDENT * depth
        out: list[str] = []
        for layer in chain.layers:
            head = " ".join([layer.word, *map(self.value, layer.args), *map(self.option, layer.options)])
            if not out:
                head = pad + head
            else:
                out[-1] += " -> "
                head = out.pop() + head
            if layer.body is None:
                out.append(head)
            else:
                out += self.with_body(head, layer.body, depth, inline=True)
        return out

    def with_body(self, head: str, body, depth: int, inline: bool) -> list[str]:
        if not body:
            return [head + " {}"]
        if inline and len(body) == 1 and isinstance(body[0], ast.Chain) and not self._has_comments(body):
            one = self.chain(body[0], 0)
            if len(one) == 1 and len(head) + len(one[0]) + 6 <= MAX_WIDTH:
                return [f"{head} {{ {one[0]} }}"]
        inner = self.body_lines(body, depth + 1)
        return [head + " {", *inner, INDENT * depth + "}"]

    # --- comments -----------------------------------------------------------------

    def leftover_comments(self, before_line: int, depth: int) -> list[str]:
        out = []
        for line in sorted(self.comments):
            if line < before_line and line not in self.emitted and self.comments[line][1]:
                self.emitted.add(line)
                out.append(INDENT * depth + self.comments[line][0])
        return out

    def trailing_comment(self, line: int) -> str | None:
        comment = self.comments.get(line)
        if comment and not comment[1] and line not in self.emitted:
            self.emitted.add(line)
            return comment[0]
        return None

    def _has_comments(self, body) -> bool:
        lines = {_first_line(s) for s in body}
        return any(line in self.comments for line in lines)

    def _blank_between(self, end: int, start: int) -> bool:
        return any(not self.lines[i - 1].strip() for i in range(end + 1, start) if 0 < i <= len(self.lines))


def _first_line(statement) -> int:
    if isinstance(statement, ast.Chain):
        return statement.layers[0].span.line
    return statement.span.line


def _last_line(statement, lines: list[str]) -> int:
    """The last source line a statement occupies (bodies end at their closing brace)."""
    start = _first_line(statement)
    depth = 0
    for index in range(start - 1, len(lines)):
        code = lines[index].split("#", 1)[0]
        depth += code.count("{") - code.count("}")
        if depth <= 0 and not code.rstrip().endswith("->"):
            return index + 1
    return len(lines)


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

"""Source text to AST, with lark (grammars/spec.lark) and friendly syntax errors."""

from __future__ import annotations

import ast as python_ast
import functools
from importlib import resources
from pathlib import Path

import lark
from lark import Lark, Transformer

from . import ast
from .errors import Diagnostic, Span, SpecError
from .parse_tables import cached_lark

MAX_SYNTAX_ERRORS = 20
MAX_NESTING = 50  # `{ }` bodies inside one another; real models nest a handful


def grammar_text() -> str:
    """The grammar, from the installed package or, in a checkout, from grammars/."""
    packaged = resources.files("spec_compiler").joinpath("grammars/spec.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "grammars" / "spec.lark").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    # Spans come from tokens (which always carry their position), so lark need not
    # propagate positions into every tree node: that halves the parse time. The built
    # tables are cached on disk (parse_tables.py), so later processes skip building them.
    return cached_lark(grammar_text(), parser="lalr", propagate_positions=False, maybe_placeholders=True)


def _span(path: str, item) -> Span:
    meta = getattr(item, "meta", item)
    end = meta.end_column if meta.end_line == meta.line else None
    return Span(path, meta.line, meta.column, end)


class _ToAst(Transformer):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _s(self, item) -> Span:
        return _span(self.path, item)

    # values
    def dims(self, children):
        (token,) = children
        items = tuple(int(p) if p.isdigit() else p for p in str(token).split("x"))
        return ast.Dims(items, self._s(token))

    def number(self, children):
        (token,) = children
        text = str(token)
        value: int | float = int(text) if text.lstrip("+-").isdigit() else float(text)
        return ast.Number(value, self._s(token))

    def string(self, children):
        (token,) = children
        return ast.String(python_ast.literal_eval(str(token)), self._s(token))

    def unknown(self, children):
        (token,) = children
        return ast.Unknown(self._s(token))

    def name(self, children):
        (token,) = children
        return ast.Name(str(token), self._s(token))

    def call(self, children):
        name, *rest = children
        rest = [r for r in rest if r is not None]
        args = tuple(r for r in rest if not isinstance(r, ast.Option))
        options = tuple(r for r in rest if isinstance(r, ast.Option))
        return ast.Call(str(name), args, options, self._s(name))

    def list(self, children):
        bracket, *items = children
        return ast.ListValue(tuple(c for c in items if c is not None), self._s(bracket))

    def option(self, children):
        key, value = children
        return ast.Option(str(key), value, self._s(key))

    # statements
    def model_decl(self, children):
        (name,) = children
        return ast.ModelDecl(str(name), self._s(name))

    def input_decl(self, children):
        kind, *rest = children
        args = tuple(r for r in rest if not isinstance(r, ast.Option))
        options = tuple(r for r in rest if isinstance(r, ast.Option))
        return ast.InputDecl(str(kind), args, options, self._s(kind))

    def block_param(self, children):
        name, default = children
        return ast.BlockParam(str(name), default, self._s(name))

    def block_def(self, children):
        name, *params, body = children
        return ast.BlockDef(str(name), tuple(p for p in params if p is not None), body, self._s(name))

    def option_line(self, children):
        return tuple(children)

    def train_section(self, children):
        word, *lines = children
        options = tuple(o for line in lines for o in line)
        return ast.TrainSection(options, self._s(word))

    def body(self, children):
        return tuple(children)

    def layer(self, children):
        word, *rest = children
        body = None
        if rest and (rest[-1] is None or isinstance(rest[-1], tuple)):
            body = rest.pop()
        args = tuple(r for r in rest if not isinstance(r, ast.Option))
        options = tuple(r for r in rest if isinstance(r, ast.Option))
        return ast.Layer(str(word), args, options, body, self._s(word))

    def chain(self, children):
        return ast.Chain(tuple(c for c in children if isinstance(c, ast.Layer)))

    def start(self, children):
        return tuple(children)


def parse(source: str, path: str = "<spec>") -> ast.SpecFile:
    """Parse a whole file, reporting every syntax error (up to a limit)."""
    diagnostics: list[Diagnostic] = []
    text = source
    while True:
        try:
            tree = _parser().parse(text)
            break
        except lark.UnexpectedInput as error:
            diagnostic = _describe(error, text, path)
            if any(d.span and diagnostic.span and d.span.line >= diagnostic.span.line for d in diagnostics):
                break  # recovery went backwards: a cascade, not a new mistake
            diagnostics.append(diagnostic)
            if len(diagnostics) >= MAX_SYNTAX_ERRORS or not _blank_line(error, text):
                break
            text = _blank_line(error, text)
    if diagnostics:
        raise SpecError(diagnostics, source)
    too_deep = _too_deep(source)
    if too_deep is not None:  # checked after parsing: a syntax error is the likelier mistake
        line, column = too_deep
        raise SpecError(Diagnostic(f"bodies nested more than {MAX_NESTING} deep", Span(path, line, column, column + 1),
                                   "flatten the structure, or define a block for the inner part"), source)
    statements = _ToAst(path).transform(tree)
    return ast.SpecFile(path, source, tuple(statements))


def _blank_line(error: lark.UnexpectedInput, text: str) -> str | None:
    """The text with the offending line blanked out, to look for further errors."""
    line = getattr(error, "line", -1)
    lines = text.split("\n")
    if not (1 <= line <= len(lines)) or isinstance(error, lark.UnexpectedEOF):
        return None
    if getattr(error, "token", None) is not None and error.token.type == "$END":
        return None
    if "{" in lines[line - 1] or "}" in lines[line - 1]:
        return None  # blanking a brace would only produce cascades
    lines[line - 1] = ""
    return "\n".join(lines)


def _describe(error: lark.UnexpectedInput, text: str, path: str) -> Diagnostic:
    """Turn lark's exception into one of a handful of named, friendly errors."""
    line, column = getattr(error, "line", 1), getattr(error, "column", 1)
    if line is None or line < 1:
        line, column = _end_position(text)
    before = _text_before(text, line, column)
    span = Span(path, line, column, column + 1)

    if isinstance(error, lark.UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        if before.endswith("="):
            return Diagnostic("missing value after `=`", span, "write key=value, for example stride=2")
        return Diagnostic(f"unexpected character `{char}`", span,
                          "layers are words followed by numbers, sizes like 6x5x5 and key=value options")

    token = getattr(error, "token", None)
    token_type = token.type if token is not None else "$END"
    value = str(token) if token is not None else ""

    if token_type == "$END" or isinstance(error, lark.UnexpectedEOF):
        before = _text_before(text, *_end_position(text))
        span = Span(path, *_end_position(text), _end_position(text)[1] + 1)
        open_brace = _unclosed_brace(text)
        if open_brace is not None:
            bl, bc = open_brace
            return Diagnostic("unclosed `{`: the file ends before its `}`", Span(path, bl, bc, bc + 1),
                              "add `}` to close this block")
        if before.endswith("->"):
            line, column = _position_of(text, text.rstrip().rfind("->"))
            return Diagnostic("`->` with no layer after it", Span(path, line, column, column + 2),
                              "remove the trailing `->` or add a layer after it")
        if before.endswith("="):
            return Diagnostic("missing value after `=`", span, "write key=value, for example stride=2")
        return Diagnostic("unexpected end of file", span)

    if token_type == "ARROW":
        arrow_line, arrow_col = _position_of(text, token.start_pos + value.index("->"))
        span = Span(path, arrow_line, arrow_col, arrow_col + 2)
        if before.rstrip().endswith("->"):
            return Diagnostic("doubled arrow `-> ->`", span, "remove one of the `->`")
        return Diagnostic("`->` with no layer before it", span, "an arrow joins two layers: `conv 6x5x5 -> relu`")
    if before.endswith("="):
        return Diagnostic("missing value after `=`", span, "write key=value, for example stride=2")
    if token_type == "NAME" and before.endswith("}"):
        return Diagnostic(f"`{value}` starts a new statement on the same line",
                          Span(path, line, column, column + len(value)),
                          "put a new line or `;` between statements: `branch { ... }; branch { ... }`")
    if token_type == "RBRACE" and before.endswith("->"):
        line, column = _position_of(text, text.rfind("->", 0, token.start_pos + 1))
        return Diagnostic("`->` with no layer after it", Span(path, line, column, column + 2),
                          "remove the `->` or add a layer after it")
    if token_type == "RBRACE":
        return Diagnostic("unmatched `}`", span, "remove it, or open a block with `{` before it")
    if token_type == "_NL" and before.rstrip().endswith("->"):
        line, column = _position_of(text, text.rfind("->", 0, token.start_pos + 1))
        return Diagnostic("`->` with no layer after it", Span(path, line, column, column + 2),
                          "remove the `->` or add a layer after it")
    if token_type == "EQUAL":
        return Diagnostic("unexpected `=`: an option belongs after a layer's word", span,
                          "write the layer first, then key=value: `conv 6 5x5 stride=2`")
    shown = value.strip() or {"_NL": "end of line", "$END": "end of file"}.get(token_type, token_type)
    message = f"unexpected {shown}" if not value.strip() else f"unexpected `{shown}`"
    return Diagnostic(message, Span(path, line, column, column + max(1, len(value.strip()))),
                      _expected_hint(getattr(error, "expected", set())))


def _expected_hint(expected: set[str]) -> str | None:
    readable = {
        "NAME": "a name", "NUMBER": "a number", "DIMS": "a size like 3x3", "LBRACE": "`{`",
        "RBRACE": "`}`", "ARROW": "`->`", "EQUAL": "`=`", "_NL": "a new line",
        "LPAR": "`(`", "RPAR": "`)`", "COMMA": "`,`", "STRING": "a string",
    }
    words = sorted({readable[e] for e in expected if e in readable})
    return f"expected {' or '.join(words)}" if words else None


def _text_before(text: str, line: int, column: int) -> str:
    lines = text.split("\n")
    upto = "\n".join(lines[: line - 1] + [lines[line - 1][: column - 1]]) if line <= len(lines) else text
    stripped = [ln.split("#", 1)[0] for ln in upto.split("\n")]
    return "\n".join(stripped).rstrip()


def _end_position(text: str) -> tuple[int, int]:
    lines = text.rstrip("\n").split("\n")
    return len(lines), len(lines[-1]) + 1


def _position_of(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def braces(text: str):
    """(offset, char) for each `{` and `}` outside comments and strings."""
    in_comment = False
    quote = None
    for offset, char in enumerate(text):
        if char == "\n":
            in_comment = False
        if in_comment:
            continue
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            in_comment = True
        elif char in "{}":
            yield offset, char


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where `{` nesting first passes MAX_NESTING (deeper specs would exhaust Python's stack)."""
    depth = 0
    for offset, char in braces(text):
        depth += 1 if char == "{" else -1
        if depth > MAX_NESTING:
            return _position_of(text, offset)
    return None


def _unclosed_brace(text: str) -> tuple[int, int] | None:
    stack: list[int] = []
    for offset, char in braces(text):
        if char == "{":
            stack.append(offset)
        elif stack:
            stack.pop()
    return _position_of(text, stack[-1]) if stack else None

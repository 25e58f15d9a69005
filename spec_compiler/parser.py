"""Source text to AST, with lark (grammars/spec.lark) and friendly syntax errors.

The LALR parser is generated_parser.py: lark's stand-alone parser for grammars/spec.lark,
written by lark's own tool (`python -m lark.tools.standalone --maybe_placeholders
grammars/spec.lark -o spec_compiler/generated_parser.py`) and checked against the grammar
by tests/compiler/test_generated_parser.py. It holds the built tables and the part of lark
that runs them, so `specc compile` neither imports lark's grammar compiler nor builds or
reads any tables."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from dataclasses import dataclass

from . import ast
from .errors import Diagnostic, Span, SpecError
from .expression_syntax import MAX_VALUE_NESTING, ExpressionRules, too_deeply_nested
from .generated_parser import (
    Lark,
    Lark_StandAlone,
    Transformer,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    VisitError,
)
from .limits import MAX_DIMS, MAX_INTEGER
from .source import check_size, normalize_source

MAX_SYNTAX_ERRORS = 20
MAX_NESTING = 50  # `{ }` bodies inside one another; real models nest a handful
# Finding each further syntax error parses the file again (with the bad line blanked):
# at most this many characters of parsing in all, so a large file stops after a few.
MAX_REPARSE_CHARACTERS = 200_000
_STRING_ESCAPE = re.compile(r"\\([\\\"'])")


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    # Spans come from tokens (which always carry their position), so the parser need not
    # propagate positions into every tree node: that halves the parse time.
    return Lark_StandAlone()


def _span(path: str, item) -> Span:
    meta = getattr(item, "meta", item)
    end = meta.end_column if meta.end_line == meta.line else None
    return Span(path, meta.line, meta.column, end)


class _ToAst(ExpressionRules, Transformer):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _s(self, item) -> Span:
        return _span(self.path, item)

    # values
    def dims(self, children):
        (token,) = children
        parts = str(token).split("x")
        if len(parts) > MAX_DIMS:
            raise SpecError(Diagnostic(f"a size with {len(parts)} parts: at most {MAX_DIMS}", self._s(token)))
        items = tuple(self._integer(p, token) if p.isdigit() else p for p in parts)
        return ast.Dims(items, self._s(token))

    def number(self, children):
        (token,) = children
        text = str(token)
        if text.lstrip("+-").isdigit():
            return ast.Number(self._integer(text, token), self._s(token))
        value = float(text)
        if not math.isfinite(value):
            raise SpecError(Diagnostic(f"`{_shorten(text)}` is too large for a number", self._s(token),
                                       "numbers are at most about 1.8e308"))
        return ast.Number(value, self._s(token))

    def _integer(self, text: str, token) -> int:
        """The value of a whole number, refused before conversion when it has too many digits."""
        digits = text.lstrip("+-").lstrip("0")
        if len(digits) > len(str(MAX_INTEGER)) or int(digits or "0") > MAX_INTEGER:
            raise SpecError(Diagnostic(f"`{_shorten(text)}` is too large: whole numbers are at most {MAX_INTEGER:,}",
                                       self._s(token)))
        return int(text)

    def string(self, children):
        (token,) = children
        # `\\`, `\"` and `\'` are escapes; any other backslash is itself (Windows paths).
        return ast.String(_STRING_ESCAPE.sub(r"\1", str(token)[1:-1]), self._s(token))

    def unknown(self, children):
        (token,) = children
        return ast.Unknown(self._s(token))

    def name(self, children):
        (token,) = children
        return ast.Name(str(token), self._s(token))

    def call(self, children):
        name, *rest = children  # the `(`, `,` and `)` are not kept
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
        return self._joined(children)

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

    def assignment(self, children):
        name, chain = children
        return ast.Assignment(str(name), chain, self._s(name))

    def output_decl(self, children):
        word, *names = children
        return ast.OutputDecl(tuple(ast.Name(str(n), self._s(n)) for n in names), self._s(word))

    def continuation(self, children):
        arrow, *rest = children
        return _Continuation(tuple(c for c in rest if isinstance(c, ast.Layer)), self._s(arrow))

    def start(self, children):
        return self._joined(children)

    def _joined(self, statements) -> tuple:
        """Statements with each `-> layer` line joined to the chain above it (also a named one)."""
        out: list = []
        for statement in statements:
            if isinstance(statement, _Continuation):
                if out and isinstance(out[-1], ast.Assignment):
                    named = out[-1]
                    out[-1] = ast.Assignment(named.name, ast.Chain(named.chain.layers + statement.layers), named.span)
                    continue
                if not out or not isinstance(out[-1], ast.Chain):
                    raise SpecError(Diagnostic("`->` with no layer before it", statement.arrow,
                                               "an arrow joins two layers: `conv 6x5x5 -> relu`"))
                out[-1] = ast.Chain(out[-1].layers + statement.layers)
            else:
                out.append(statement)
        return tuple(out)


@dataclass(frozen=True)
class _Continuation:
    """`-> layer ...` at the start of a line, before it is joined to the chain above."""

    layers: tuple[ast.Layer, ...]
    arrow: Span


def parse(source: str, path: str = "<spec>") -> ast.SpecFile:
    """Parse a whole file, reporting every syntax error (up to a limit).

    The text is normalized first (source.normalize_source: BOM, line endings, form
    feeds), and refused when over the size limits before any parsing work is done."""
    source = normalize_source(source)
    check_size(source, path)
    diagnostics: list[Diagnostic] = []
    text = source
    parses_left = max(1, min(MAX_SYNTAX_ERRORS, MAX_REPARSE_CHARACTERS // max(len(source), 1)))
    while True:
        try:
            tree = _parser().parse(text)
            break
        except UnexpectedInput as error:
            diagnostic = _describe(error, text, path)
            if any(d.span and diagnostic.span and d.span.line >= diagnostic.span.line for d in diagnostics):
                break  # recovery went backwards: a cascade, not a new mistake
            diagnostics.append(diagnostic)
            parses_left -= 1
            blanked = _blank_line(error, text) if parses_left > 0 and len(diagnostics) < MAX_SYNTAX_ERRORS else None
            if blanked is None:
                break
            text = blanked
    if diagnostics:
        raise SpecError(diagnostics, source)
    too_deep = _too_deep(source)
    if too_deep is not None:  # checked after parsing: a syntax error is the likelier mistake
        line, column = too_deep
        raise SpecError(Diagnostic(f"bodies nested more than {MAX_NESTING} deep", Span(path, line, column, column + 1),
                                   "flatten the structure, or define a block for the inner part"), source)
    deep_value = too_deeply_nested(tree)
    if deep_value is not None:
        raise SpecError(Diagnostic(f"a value nested more than {MAX_VALUE_NESTING} deep", _span(path, deep_value),
                                   "write it with fewer parentheses, operators or lists inside lists"), source)
    try:
        statements = _ToAst(path).transform(tree)
    except VisitError as error:  # a SpecError of the transformer: a number too large, a stray `->`
        if isinstance(error.orig_exc, SpecError):
            raise error.orig_exc.with_source(source) from None
        raise
    return ast.SpecFile(path, source, tuple(statements))


def _shorten(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _blank_line(error: UnexpectedInput, text: str) -> str | None:
    """The text with the offending line blanked out, to look for further errors."""
    line = getattr(error, "line", -1)
    lines = text.split("\n")
    if not (1 <= line <= len(lines)) or isinstance(error, UnexpectedEOF):
        return None
    if getattr(error, "token", None) is not None and error.token.type == "$END":
        return None
    if "{" in lines[line - 1] or "}" in lines[line - 1]:
        return None  # blanking a brace would only produce cascades
    lines[line - 1] = ""
    return "\n".join(lines)


def _describe(error: UnexpectedInput, text: str, path: str) -> Diagnostic:
    """Turn lark's exception into one of a handful of named, friendly errors."""
    line, column = getattr(error, "line", 1), getattr(error, "column", 1)
    offset = getattr(error, "pos_in_stream", None)
    if offset is None and getattr(error, "token", None) is not None:
        offset = error.token.start_pos
    if line is None or line < 1 or offset is None:
        line, column = _end_position(text)
        offset = len(text.rstrip("\n"))
    before = _text_before(text, offset)
    span = Span(path, line, column, column + 1)

    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        if before.endswith("="):
            return _missing_after_equal(before, span)
        if char == "/":
            return Diagnostic("unexpected character `/`", span, "`//` divides whole numbers: `c//2`")
        return Diagnostic(f"unexpected character {_shown_character(char)}", span,
                          "layers are words followed by numbers, sizes like 6x5x5 and key=value options")

    token = getattr(error, "token", None)
    token_type = token.type if token is not None else "$END"
    value = str(token) if token is not None else ""

    if token_type == "$END" or isinstance(error, UnexpectedEOF):
        before = _text_before(text, len(text))
        end_line, end_column = _end_position(text)
        span = Span(path, end_line, end_column, end_column + 1)
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
            return _missing_after_equal(before, span)
        return Diagnostic("unexpected end of file", span)

    if token_type == "ARROW":
        arrow_line, arrow_col = _position_of(text, token.start_pos)
        span = Span(path, arrow_line, arrow_col, arrow_col + 2)
        if before.rstrip().endswith("->"):
            return Diagnostic("doubled arrow `-> ->`", span, "remove one of the `->`")
        return Diagnostic("`->` with no layer before it", span, "an arrow joins two layers: `conv 6x5x5 -> relu`")
    if before.endswith("="):
        return _missing_after_equal(before, span)
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
    if token_type == "EQUAL":
        return Diagnostic("unexpected `=`: an option belongs after a layer's word", span,
                          "write the layer first, then key=value: `conv 6 5x5 stride=2`")
    merge_hint = _tensor_operator_hint(before, value.strip())
    if merge_hint is not None:
        return Diagnostic(f"unexpected `{value.strip()}`", Span(path, line, column, column + 1), merge_hint)
    shown = value.strip() or {"_NL": "end of line", "$END": "end of file"}.get(token_type, token_type)
    message = f"unexpected {shown}" if not value.strip() else f"unexpected `{shown}`"
    return Diagnostic(message, Span(path, line, column, column + max(1, len(value.strip()))),
                      _expected_hint(getattr(error, "expected", set())))


_NAMING = re.compile(r"^[\t ]*([A-Za-z_][A-Za-z0-9_.]*)[\t ]*=$")
_MERGE_HEAD = re.compile(r"^[\t ]*(?:[A-Za-z_]\w*[\t ]*=[\t ]*)?(add|concat|multiply|maximum|minimum|average)\b")
_NAMES_A_TENSOR = re.compile(r"^[\t ]*[A-Za-z_]\w*[\t ]*=[\t ]*[A-Za-z_]\w*$")


def _tensor_operator_hint(before: str, value: str) -> str | None:
    """A newcomer's way to merge tensors, `concat a, b`, `concat(a, b)` or `c = a + b` (or
    branches, `concat { branch {..}, branch {..} }`): the hint that shows the merge's form,
    or None for any other mistake."""
    merge = _MERGE_HEAD.match(before)
    if value == "," and merge and "{" in before:
        return f"separate branches with `;` or a new line: `{merge.group(1)} {{ branch {{ ... }}; branch {{ ... }} }}`"
    if value == "," and merge:
        return f"a merge lists the tensors it reads with spaces: `{merge.group(1)} a b`"
    if value in ("+", "*") and _NAMES_A_TENSOR.match(before):
        return f"tensors are merged by a layer word: `{'add' if value == '+' else 'multiply'} a b`"
    return None


def _missing_after_equal(before: str, span: Span) -> Diagnostic:
    """Nothing after `=`: of an option (`stride=`, indented in a train section), or of a
    statement naming a chain (`a =`, at the start of a line or after `;`)."""
    *earlier, statement = before.rsplit(";", 1)
    statement = statement.lstrip() if earlier else statement
    naming = _NAMING.match(statement)
    if naming and not statement[:1].isspace():
        return Diagnostic(f"missing chain after `{naming.group(1)} =`", span,
                          f"name the value of a chain: `{naming.group(1)} = input -> dense 10`")
    return Diagnostic("missing value after `=`", span, "write key=value, for example stride=2")


def _shown_character(char: str) -> str:
    """`@`, or U+00A0 (NO-BREAK SPACE) for a character a terminal would not show."""
    if char.isprintable() and not char.isspace():
        return f"`{char}`"
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character')})"


def _expected_hint(expected: set[str]) -> str | None:
    readable = {
        "NAME": "a name", "NUMBER": "a number", "DIMS": "a size like 3x3", "LBRACE": "`{`",
        "RBRACE": "`}`", "ARROW": "`->`", "EQUAL": "`=`", "_NL": "a new line",
        "OPEN": "`(`", "CLOSE": "`)`", "COMMA": "`,`", "STRING": "a string", "QMARK": "`?`",
    }
    words = sorted({readable[e] for e in expected if e in readable})
    return f"expected {' or '.join(words)}" if words else None


def _text_before(text: str, offset: int) -> str:
    """The last line of code before `offset`, without its comment and trailing blanks
    (the messages only look at how the code before a mistake ends), or ""."""
    end = offset
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        code = text[start:end].split("#", 1)[0].rstrip()
        if code:
            return code
        end = _end_of_text_before(text, start)  # past the blank and comment-only lines before it
    return ""


def _end_of_text_before(text: str, end: int) -> int:
    """Offset just past the last non-blank character before `end` (0 if none), looking back
    a piece at a time so that a long run of blank lines is not copied for each line."""
    while end > 0:
        begin = max(0, end - 256)
        kept = text[begin:end].rstrip()
        if kept:
            return begin + len(kept)
        end = begin
    return 0


def _end_position(text: str) -> tuple[int, int]:
    stripped = text.rstrip("\n")
    return stripped.count("\n") + 1, len(stripped) - (stripped.rfind("\n") + 1) + 1


def _position_of(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


# A comment, a string (as the grammar reads them) or a brace: one C-speed pass finds the braces.
_BRACE_OR_SKIPPED = re.compile(r"""#[^\n]*|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|[{}]""")


def braces(text: str):
    """(offset, char) for each `{` and `}` outside comments and strings."""
    for match in _BRACE_OR_SKIPPED.finditer(text):
        char = match.group()
        if char in ("{", "}"):
            yield match.start(), char


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


def brace_pairs(text: str) -> dict[int, int]:
    """Offset of each `{` (outside comments and strings) -> offset of its `}`; for the formatter."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for offset, char in braces(text):
        if char == "{":
            stack.append(offset)
        elif stack:
            pairs[stack.pop()] = offset
    return pairs

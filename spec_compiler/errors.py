"""Diagnostics: one error type that points into the user's file.

Every user mistake (syntax, unknown names, bad values, shape mismatches, bad data)
becomes a `Diagnostic` with a source span, and is rendered like a compiler renders
it: ``file:line:col: error: message``, the source line, a caret, and a hint.

A value that is valid but probably not what the user meant (`batchnorm momentum=0.1`,
PyTorch's habit under Keras' convention) is a `Diagnostic` of severity "warning": it is
rendered the same way with ``warning:``, travels with the checked model
(`Model.warnings`), and never stops a compile.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Span:
    """A region of a source file: 1-based line and column, end column exclusive."""

    file: str
    line: int
    column: int
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    """One finding: its message, where (file:line:col), a hint, and whether it stops the compile."""

    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = "error"

    def render(self, source: str | None) -> str:
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}{self.severity}: {self.message}"]
        if self.span and source is not None:
            source_lines = source.split("\n")  # the parser's lines: not splitlines(), which splits at \f or U+2028
            if 1 <= self.span.line <= len(source_lines):
                start = max(self.span.column, 1)
                text, start, end = _visible(source_lines[self.span.line - 1], start, self.span.end_column or start + 1)
                number = str(self.span.line)
                pad = " " * len(number)
                width = max(1, min(end, len(text) + 1) - start)
                # the caret line copies the tabs before the culprit, so it lines up however tabs are shown
                indent = "".join(c if c == "\t" else " " for c in text[: start - 1])
                lines.append(f"  {number} | {text}")
                lines.append(f"  {pad} | {indent}{'^' * width}")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


SHOWN_LINE_LENGTH = 120  # longer source lines are shown as a window around the culprit


def _visible(text: str, start: int, end: int) -> tuple[str, int, int]:
    """The source line as shown under a message: a long line is cut to a window around
    columns start..end (which are moved to match), and characters a terminal would not
    show (escape codes, NUL, U+2028) become U+FFFD, one for one."""
    if len(text) > SHOWN_LINE_LENGTH:
        first = max(0, start - 1 - SHOWN_LINE_LENGTH // 3)
        last = min(len(text), first + SHOWN_LINE_LENGTH)
        head = "..." if first > 0 else ""
        tail = "..." if last < len(text) else ""
        shift = first - len(head)
        text, start, end = head + text[first:last] + tail, start - shift, min(end, last + 1) - shift
    return "".join(c if c == "\t" or c.isprintable() else "\ufffd" for c in text), start, end


class SpecError(Exception):
    """One or more user mistakes. Carries the source so it can render itself, and the
    warnings found before the mistakes (printed first: `input image 224x224x3` warns, and
    the shape error it leads to is easier to read after the warning)."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic], source: str | None = None,
                 not_shown: int = 0, warnings: Iterable[Diagnostic] = ()):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        self.source = source
        self.not_shown = not_shown  # errors found past the reporting limit
        self.warnings: list[Diagnostic] = list(warnings)
        super().__init__(self.render())

    @classmethod
    def at(cls, span: Span | None, message: str, hint: str | None = None) -> SpecError:
        return cls(Diagnostic(message, span, hint))

    def with_source(self, source: str) -> SpecError:
        if self.source is None:
            self.source = source
            self.args = (self.render(),)
        return self

    def with_warnings(self, warnings: Iterable[Diagnostic]) -> SpecError:
        self.warnings += [w for w in warnings if w not in self.warnings]
        self.args = (self.render(),)
        return self

    def render(self) -> str:
        text = "\n".join(d.render(self.source) for d in [*self.warnings, *self.diagnostics])
        count = len(self.diagnostics) + self.not_shown
        if self.not_shown:
            text += f"\n{count} errors ({self.not_shown} more not shown; fix these first)"
        elif count > 1:
            text += f"\n{count} errors"
        return text

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


def render_warnings(warnings: Iterable[Diagnostic], source: str | None) -> str:
    """Warnings as a compiler prints them, one after another ("" when there are none)."""
    return "\n".join(warning.render(source) for warning in warnings)


def warning_dict(warning: Diagnostic) -> dict:
    """A warning as `--json` output carries it."""
    span = warning.span
    return {"message": warning.message, "line": span.line if span else None,
            "column": span.column if span else None, "hint": warning.hint}


class UsageError(Exception):
    """The command line is wrong (exit code 2)."""


def cannot_write(path: str, error: OSError) -> SpecError:
    """`cannot write out.json: Permission denied`: the path the user named and the system's reason."""
    return SpecError.at(None, f"cannot write {path}: {error.strerror or error}")


def describe_os_error(error: OSError) -> str:
    """`data.npz: No such file or directory`, for a system error no command turned into a message."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


@dataclass
class DiagnosticSink:
    """Collects errors so that a whole file is reported at once, up to a limit."""

    limit: int = 20
    diagnostics: list[Diagnostic] = field(default_factory=list)
    dropped: int = 0  # errors past the limit, counted but not shown

    def add(self, error: SpecError | Diagnostic) -> None:
        items = error.diagnostics if isinstance(error, SpecError) else [error]
        for item in items:
            if item in self.diagnostics:
                continue
            if len(self.diagnostics) < self.limit:
                self.diagnostics.append(item)
            else:
                self.dropped += 1

    def raise_if_any(self, source: str | None = None) -> None:
        if self.diagnostics:
            # in file order, as a compiler lists them (errors without a place last)
            ordered = sorted(self.diagnostics, key=lambda d: (d.span is None, d.span.line if d.span else 0,
                                                               d.span.column if d.span else 0))
            raise SpecError(ordered, source, not_shown=self.dropped)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None. Only close matches: a few
    typing slips (at most a third of the word, at least 2), or a name at most doubled
    (`vocabulary` for `vocab`). Sharing a long tail is not enough: `conv_transpose`
    must not send the user to `transpose`."""
    import difflib  # only when there is a mistake to suggest a fix for

    candidates = difflib.get_close_matches(word, sorted(set(choices)), n=5, cutoff=0.6)
    close = [c for c in candidates if edit_distance(word, c) <= max(2, len(word) // 3) or _extends(word, c)]
    return f"did you mean `{close[0]}`?" if close else None


def _extends(a: str, b: str) -> bool:
    """One word is the other with at most as much again added at the end (`batchsize`, `batch`)."""
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and len(long) <= 2 * len(short)


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps
    of neighbours (`batchnrom`) each cost 1."""
    previous, current = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, current = previous, current, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
    return current[len(b)]


_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")


def suggestion(hint: str | None) -> str | None:
    """The word a `did_you_mean` hint suggests (what an editor's quick fix writes), or None."""
    match = _DID_YOU_MEAN.fullmatch(hint or "")
    return match.group(1) if match else None


def printable(text: str) -> str:
    """`text` with control and format characters escaped (ESC -> \\x1b, U+202E -> \\u202e),
    for text from a file (labels, input names) shown on a terminal."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch)[0] == "C" else ch
                   for ch in text)

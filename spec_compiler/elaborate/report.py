"""The mistakes elaboration finds, collected across all passes and reported together,
and the warnings it gives a spec that is valid (they never stop a compile)."""

from __future__ import annotations

from ..errors import Diagnostic, Span, SpecError


class Report:
    """Every distinct diagnostic, in the order found. Raised in file order, the first
    `limit` shown, so which ones show does not depend on the order of the passes."""

    def __init__(self) -> None:
        self._found: dict[Diagnostic, None] = {}  # an ordered set: a repeated body repeats its mistakes
        self._warnings: dict[Diagnostic, None] = {}

    def add(self, diagnostic: Diagnostic) -> None:
        self._found.setdefault(diagnostic, None)

    def error(self, span: Span | None, message: str, hint: str | None = None) -> None:
        self.add(Diagnostic(message, span, hint))

    def warn(self, span: Span | None, message: str, hint: str | None = None) -> None:
        self._warnings.setdefault(Diagnostic(message, span, hint, severity="warning"), None)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The warnings in file order."""
        return tuple(sorted(self._warnings, key=_file_order))

    def __bool__(self) -> bool:
        return bool(self._found)

    def raise_if_any(self, source: str, limit: int) -> None:
        if not self._found:
            return
        ordered = sorted(self._found, key=_file_order)
        raise SpecError(ordered[:limit], source, not_shown=max(0, len(ordered) - limit), warnings=self.warnings)


def _file_order(diagnostic: Diagnostic) -> tuple[bool, int, int]:
    span = diagnostic.span
    return span is None, span.line if span else 0, span.column if span else 0

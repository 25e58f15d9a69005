"""The mistakes elaboration finds, collected across all passes and reported together."""

from __future__ import annotations

from ..errors import Diagnostic, Span, SpecError


class Report:
    """Every distinct diagnostic, in the order found. Raised in file order, the first
    `limit` shown, so which ones show does not depend on the order of the passes."""

    def __init__(self) -> None:
        self._found: dict[Diagnostic, None] = {}  # an ordered set: a repeated body repeats its mistakes

    def add(self, diagnostic: Diagnostic) -> None:
        self._found.setdefault(diagnostic, None)

    def error(self, span: Span | None, message: str, hint: str | None = None) -> None:
        self.add(Diagnostic(message, span, hint))

    def __bool__(self) -> bool:
        return bool(self._found)

    def raise_if_any(self, source: str, limit: int) -> None:
        if not self._found:
            return
        ordered = sorted(self._found, key=lambda d: (d.span is None, d.span.line if d.span else 0,
                                                    d.span.column if d.span else 0))
        raise SpecError(ordered[:limit], source, not_shown=max(0, len(ordered) - limit))

"""The parse-tree rules of integer expressions (grammars/spec.lark: `sum`, `product`,
`signed`, `size`, `group`) turned into AST nodes whose spans cover what was written,
so that an error caret underlines the whole expression and `specc fmt` can copy it."""

from __future__ import annotations

from lark import Token

from . import ast
from .errors import Span


class ExpressionRules:
    """Methods of the parser's transformer, which supplies `_s` (a token's span)."""

    def binary(self, children):
        left, operator, right = children
        return ast.Binary(str(operator), left, right, spanning(left.span, right.span))

    def negate(self, children):
        sign, operand = children
        return ast.Negate(operand, spanning(self._s(sign), operand.span))

    def group(self, children):
        opening, inner, closing = children
        return ast.Group(inner, spanning(self._s(opening), self._s(closing)))

    def size(self, children):
        factors = tuple(c for c in children if not isinstance(c, Token))  # without the `x`s
        return ast.Size(factors, spanning(factors[0].span, factors[-1].span))


def spanning(first: Span, last: Span) -> Span:
    """From the start of `first` to the end of `last` (with no end column when it crosses lines)."""
    end = last.end_column if last.line == first.line else None
    return Span(first.file, first.line, first.column, end)

"""The parse-tree rules of integer expressions (grammars/spec.lark: `sum`, `product`,
`signed`, `size`, `group`) turned into AST nodes whose spans cover what was written,
so that an error caret underlines the whole expression and `specc fmt` can copy it."""

from __future__ import annotations

from . import ast
from .errors import Span
from .generated_parser import Token, Tree

# Values inside values (`((c))`, `1+1+1`, `[[1]]`): past this the tree would exhaust
# Python's stack when transformed and computed; real specs nest a handful.
MAX_VALUE_NESTING = 50
NESTING_RULES = frozenset({"binary", "negate", "group", "size", "list", "call"})


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


def too_deeply_nested(tree: Tree) -> Token | None:
    """The first token of a value nested more than MAX_VALUE_NESTING deep, or None. The
    walk keeps its own stack, so that a deep tree cannot exhaust Python's."""
    stack: list[tuple[Tree | Token | None, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        depth += node.data in NESTING_RULES
        if depth > MAX_VALUE_NESTING:
            return _first_token(node)
        stack.extend((child, depth) for child in node.children)
    return None


def _first_token(node: Tree) -> Token:
    while not isinstance(node, Token):
        node = next(child for child in node.children if child is not None)
    return node

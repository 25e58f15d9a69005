"""Where elaboration stands while it expands a layer: block arguments in force, the
blocks being expanded, and which copy of a `repeat` body this is; and the values
written there, read in that context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import ast
from .expressions import ExpressionError, evaluate
from .report import Report


@dataclass(frozen=True)
class Context:
    """Where elaboration is: the block parameters bound, the blocks being expanded, the repeat copy."""

    bindings: dict[str, ast.Value] = field(default_factory=dict)
    expanding: tuple[ast.BlockDef, ...] = ()  # outermost first
    copy: int = 0  # 0 for the first copy of a `repeat` body (and outside any repeat)

    @property
    def block(self) -> ast.BlockDef | None:
        """The innermost block being expanded."""
        return self.expanding[-1] if self.expanding else None

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(block.name for block in self.expanding)


def substitute(value: ast.Value, ctx: Context) -> ast.Value:
    """`value` with block parameters replaced by the arguments of the block use, and its
    expressions computed; raises ExpressionError for one that cannot be."""
    return evaluate(value, ctx.bindings, ctx.block)


def substitute_or_report(value: ast.Value, ctx: Context, report: Report) -> ast.Value | None:
    """`substitute`, or None after reporting why the value cannot be computed."""
    try:
        return substitute(value, ctx)
    except ExpressionError as error:
        report.add(error.diagnostic)
        return None


def substitute_all(values: Sequence[ast.Value], ctx: Context, report: Report) -> list[ast.Value] | None:
    """Every value substituted, or None after reporting each one that cannot be."""
    done = [substitute_or_report(value, ctx, report) for value in values]
    return None if any(value is None for value in done) else done

"""Where elaboration stands while it expands a layer: block arguments in force, the
blocks being expanded, and which copy of a `repeat` body this is."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ast


@dataclass(frozen=True)
class Context:
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
    """Replace block parameters by the arguments of the block use."""
    if isinstance(value, ast.Name) and value.name in ctx.bindings:
        return ctx.bindings[value.name]
    if isinstance(value, ast.ListValue):
        return ast.ListValue(tuple(substitute(v, ctx) for v in value.items), value.span)
    if isinstance(value, ast.Call):
        return ast.Call(value.name, tuple(substitute(v, ctx) for v in value.args),
                        tuple(ast.Option(o.key, substitute(o.value, ctx), o.span) for o in value.options),
                        value.span)
    return value

"""The tree that expansion builds: every layer the model will have, each with the
context it was written in, before its arguments are read."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ast
from ..errors import Span
from ..layers.base import LayerKind
from .context import Context


@dataclass(frozen=True)
class Use:
    """One layer after blocks and `repeat` are expanded: a registry kind, or a block
    use (which becomes a `group` holding the block's layers as its one body)."""

    kind: LayerKind
    layer: ast.Layer  # as written; a block use's arguments are already bound in the body's context
    ctx: Context  # where the layer is written
    bodies: tuple[tuple[Use, ...], ...] = ()
    body_spans: tuple[Span, ...] = ()
    block: ast.BlockDef | None = None  # for a block use
    block_options: dict[str, ast.Option] = field(default_factory=dict)  # a block use's `name=`, `frozen=`

    @property
    def name_base(self) -> str:
        """What automatic names count: `conv2d_1`, or `basic_1` for a block."""
        return self.block.name if self.block else self.kind.name

    @property
    def name_option(self) -> ast.Option | None:
        if self.block:
            return self.block_options.get("name")
        return next((o for o in self.layer.options if o.key == "name"), None)

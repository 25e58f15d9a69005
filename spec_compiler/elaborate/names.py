"""Pass 4: naming. Every node gets a name unique in its sequence: the one written
(`name=fc`, suffixed `_2`, `_3` in later copies of a `repeat` body) or an automatic
one counted per kind (`conv2d_1`, `basic_2`). The top level is one sequence across
all of a graph's lines, so paths stay unique. The result is the IR's node tree."""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import ast
from ..ir import Node
from .check import Checked
from .context import Context, substitute_or_report
from .declarations import NAME_PATTERN
from .report import Report

# PyTorch sets `training` on every module when it switches train/eval, which fails on a
# module with a child of that name: no layer can be called so.
MODULE_STATE_NAMES = frozenset({"training"})


@dataclass
class Scope:
    """Names used in one sequence, and per-kind counters for automatic names."""

    used: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)

    def auto_name(self, kind: str) -> str:
        while True:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            candidate = f"{kind}_{self.counters[kind]}"
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate

    def reuse_name(self, name: str) -> str:
        """The name of a further use of the layer `name`: `enc_2`, `enc_3`."""
        number = 2
        while f"{name}_{number}" in self.used:
            number += 1
        self.used.add(f"{name}_{number}")
        return f"{name}_{number}"


def name_nodes(checked: Sequence[Checked], report: Report, scope: Scope | None = None) -> list[Node]:
    """The nodes of one sequence (and, within them, of their bodies); `scope`: the names
    the sequence's earlier parts used (a graph's earlier lines)."""
    scope = Scope() if scope is None else scope
    nodes: list[Node] = []
    for item in checked:
        use = item.use
        bodies = tuple(tuple(name_nodes(body, report)) for body in item.bodies)
        if not item.arguments_read:
            continue
        name = _node_name(use.name_base, use.name_option, scope, use.ctx, report)
        if item.params is not None and name is not None:
            nodes.append(Node(use.kind.name, name, item.params, use.layer.span, bodies, use.body_spans))
    return nodes


def _node_name(base: str, explicit: ast.Option | None, scope: Scope, ctx: Context, report: Report) -> str | None:
    if explicit is None:
        return scope.auto_name(base)
    value = substitute_or_report(explicit.value, ctx, report)
    if value is None:
        return None
    name = ast.plain(value)
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or keyword.iskeyword(name):
        report.error(value.span, f"layer name `{name}` is not a valid name", "use letters, digits and _, starting with a letter")
        return None
    if name in MODULE_STATE_NAMES:
        report.error(value.span, f"layer name `{name}` is taken by PyTorch (every module's train/eval flag)",
                     f"choose another name, such as `{name}_layer`")
        return None
    if ctx.copy:
        name = f"{name}_{ctx.copy + 1}"
    if name in scope.used:
        report.error(value.span, f"layer name `{name}` is used twice", "give each layer a different name")
        return None
    scope.used.add(name)
    return name

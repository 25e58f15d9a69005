"""Pass 3: each expanded layer's arguments read into its kind's schema and validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .. import ast
from ..layers import REGISTRY
from ..layers.base import LayerParams
from .arguments import fill_arguments, unknown_names
from .context import substitute_all
from .pydantic_errors import validate
from .report import Report
from .uses import Use


@dataclass(frozen=True)
class Checked:
    """A use of a layer with its validated parameters (None when refused), and its bodies'."""

    use: Use
    params: LayerParams | None  # None: rejected, and reported
    bodies: tuple[tuple[Checked, ...], ...] = ()
    arguments_read: bool = True  # False when even its arguments made no sense: it is then not named


def check(uses: Sequence[Use], report: Report) -> list[Checked]:
    return _check(uses, REGISTRY.activations(), report)


def _check(uses: Sequence[Use], activations: list[str], report: Report) -> list[Checked]:
    checked: list[Checked] = []
    for use in uses:
        bodies = tuple(tuple(_check(body, activations, report)) for body in use.bodies)
        if use.block is not None:
            options = use.block_options
            values = substitute_all([o.value for o in options.values()], use.ctx, report)
            params = None if values is None else validate(
                use.kind.params, {k: ast.plain(v) for k, v in zip(options, values)},
                {k: o.value.span for k, o in options.items()}, use.layer.span, use.block.name, report)
        else:
            fields = fill_arguments(use.kind, use.layer, use.ctx, activations, report)
            if fields is None:
                checked.append(Checked(use, None, bodies, arguments_read=False))
                continue
            values, spans = fields
            params = validate(use.kind.params, values, spans, use.layer.span, use.layer.word, report,
                              unknown_names(use.layer, use.ctx))
            if params is not None:
                for advice in params.advice():
                    report.warn(spans.get(advice.field, use.layer.span), f"{use.layer.word} {advice.message}",
                                advice.hint)
        checked.append(Checked(use, params, bodies))
    return checked

"""Splitting a structural layer's `{ }` into its bodies, as its kind's `BodyLayout`
says: one sequence, marked branches, or a main sequence with one marked extra body.
No kind is known here by name; marker words come from the registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import ast
from ..errors import Span
from ..layers import REGISTRY
from ..layers.base import LayerKind
from .context import Context
from .report import Report
from .uses import Use

ExpandSequence = Callable[[Sequence[ast.Layer | ast.Statement], Context], list[Use]]
Bodies = tuple[tuple[tuple[Use, ...], ...], tuple[Span, ...]]

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def marker_owners() -> dict[str, list[str]]:
    """Each marker word (`branch`) and the kinds whose bodies it marks (`concat`, `add`)."""
    return REGISTRY.markers()


def split_bodies(kind: LayerKind, layer: ast.Layer, ctx: Context, expand: ExpandSequence, report: Report) -> Bodies:
    """The expanded bodies of `layer` (a structural kind, written with its `{ }`) and
    where each body was written."""
    statements = [inner for item in layer.body if isinstance(item, ast.Chain) for inner in item.layers]
    others = [item for item in layer.body if not isinstance(item, ast.Chain)]
    if others:
        expand(others, ctx)  # reports what does not belong in a body
    form = kind.layout.form
    if form == "sequence":
        return (tuple(expand(statements, ctx)),), (layer.span,)
    if form == "main_and_marked":
        return _main_and_marked(kind, layer, statements, ctx, expand, report)
    return _branches(kind, layer, statements, ctx, expand, report, misplaced=bool(others))


def _main_and_marked(kind: LayerKind, layer: ast.Layer, statements: list[ast.Layer], ctx: Context,
                     expand: ExpandSequence, report: Report) -> Bodies:
    """Body 0 is every statement but the marked one; `MARKER { }` is body 1 (absent: empty)."""
    marker = kind.layout.marker
    marked = [s for s in statements if s.word == marker]
    main = [s for s in statements if s.word != marker]
    for extra in marked[1:]:
        report.error(extra.span, f"a {layer.word} has at most one `{marker} {{ }}`")
    second: list[Use] = []
    span = layer.span
    if marked:
        span = marked[0].span
        if marked[0].body is None or marked[0].args or marked[0].options:
            report.error(marked[0].span, f"write the {marker} as `{marker} {{ ... }}`: a body of layers, "
                                         "with no arguments")
        else:
            second = expand(marked[0].body, ctx)
    return (tuple(expand(main, ctx)), tuple(second)), (layer.span, span)


def _branches(kind: LayerKind, layer: ast.Layer, statements: list[ast.Layer], ctx: Context,
              expand: ExpandSequence, report: Report, misplaced: bool) -> Bodies:
    """Every statement is `MARKER { ... }`, one body each, at least `min_bodies` of them
    (unless something `misplaced` was written instead, which is reported already)."""
    marker = kind.layout.marker
    bodies: list[tuple[Use, ...]] = []
    spans: list[Span] = []
    for statement in statements:
        if statement.word != marker or statement.body is None:
            report.error(statement.span, f"inside `{layer.word}`, write each path as `{marker} {{ ... }}`",
                         f"for example: {kind.example}")
            misplaced = True
            continue
        bodies.append(tuple(expand(statement.body, ctx)))
        spans.append(statement.span)
    needed = kind.layout.min_bodies
    if len(bodies) < needed and not misplaced:
        count = NUMBER_WORDS[needed] if needed < len(NUMBER_WORDS) else str(needed)
        report.error(layer.span, f"`{layer.word}` needs at least {count} `{marker} {{ }}` bodies")
    return tuple(bodies), tuple(spans)

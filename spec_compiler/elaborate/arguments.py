"""Reading a layer's arguments into its schema's fields, as the kind's slots say.

`conv 6x5x5 relu stride=2` fills filters=6, kernel=(5, 5), activation=relu, stride=2:
a `scalar` slot given `6x5x5` takes the 6 and passes `5x5` on; a trailing
activation word fills `activation`; options fill the field they name."""

from __future__ import annotations

from typing import Any

from .. import ast
from ..errors import Diagnostic, Span, did_you_mean
from ..layers.base import LayerKind
from .context import Context, substitute_all
from .expressions import is_size_word
from .report import Report

Fields = tuple[dict[str, Any], dict[str, Span]]  # field values, and where each was written


def fill_arguments(kind: LayerKind, layer: ast.Layer, ctx: Context, activations: list[str],
                   report: Report) -> Fields | None:
    """The schema's fields from positional arguments and options (`activations`: the
    words a trailing activation may be); None after reporting a mistake."""
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    args = substitute_all(layer.args, ctx, report)
    option_values = substitute_all([o.value for o in layer.options], ctx, report)
    if args is None or option_values is None:
        return None
    args = join_spaced_sizes(args)
    if kind.takes_activation and args and isinstance(args[-1], ast.Name) and args[-1].name in activations:
        values["activation"], spans["activation"] = args[-1].name, args[-1].span
        args.pop()
    if _stray_activation(layer, args, values, activations, report):
        return None
    queue = list(args)
    for slot in kind.slots:
        if not queue:
            break
        arg = queue.pop(0)
        if isinstance(arg, ast.Dims) and slot.takes == "scalar" and len(arg.items) > 1:
            queue.insert(0, ast.Dims(arg.items[1:], _rest_span(arg)))
            values[slot.field], spans[slot.field] = arg.items[0], arg.span
        elif isinstance(arg, ast.Dims) and len(arg.items) == 1 and slot.takes == "scalar":
            values[slot.field], spans[slot.field] = arg.items[0], arg.span
        else:
            values[slot.field], spans[slot.field] = ast.plain(arg), arg.span
    if queue:
        _too_many(kind, layer, queue[0], args, activations, ctx, report)
        return None
    for index, option in enumerate(layer.options):
        if option.key not in kind.params.model_fields:
            fields = list(kind.params.model_fields)
            report.error(option.span, f"`{layer.word}` has no option `{option.key}`",
                         did_you_mean(option.key, fields) or f"its options: {', '.join(fields)}")
            return None
        if option.key in values:
            given_before = {o.key for o in layer.options[:index]}
            report.error(option.span, f"`{option.key}` is given twice (positionally and as an option)"
                         if option.key in spans and option.key not in given_before
                         else f"option `{option.key}` is given twice")
            return None
        value = option_values[index]
        values[option.key] = ast.plain(value)
        spans[option.key] = value.span  # a block argument: where the use passes it
    return values, spans


def join_spaced_sizes(args: list[ast.Value]) -> list[ast.Value]:
    """`reshape c x h*w`: a lone `x` between two sizes joins them, as `cx(h*w)` would. (A
    block parameter named `x` has been replaced by its value already.)"""
    joined: list[ast.Value] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if (isinstance(arg, ast.Name) and arg.name == "x" and joined and index + 1 < len(args)
                and _size_items(joined[-1]) and _size_items(args[index + 1])):
            left, right = joined.pop(), args[index + 1]
            span = left.span if right.span.line != left.span.line else \
                Span(left.span.file, left.span.line, left.span.column, right.span.end_column)
            joined.append(ast.Dims((*_size_items(left), *_size_items(right)), span, computed=True))
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined


def _size_items(value: ast.Value) -> tuple[int | str, ...]:
    """The parts of a size a value can be: a whole number of at least 1, or a size."""
    if isinstance(value, ast.Dims):
        return value.items
    if isinstance(value, ast.Number) and isinstance(value.value, int) and not isinstance(value.value, bool) and value.value >= 1:
        return (value.value,)
    return ()


def _rest_span(size: ast.Dims) -> Span:
    """Where `5x5` is written in `6x5x5`; a computed size like `(2*c)x3x3` as a whole."""
    span = size.span
    if size.computed:
        return span
    return Span(span.file, span.line, span.column + len(str(size.items[0])) + 1, span.end_column)


def _stray_activation(layer: ast.Layer, args: list[ast.Value], values: dict, activations: list[str],
                      report: Report) -> bool:
    """An activation word left among the positional arguments: a second one, or one on
    a kind that takes none (`dense 10 relu softmax`, `dropout 0.5 relu`)."""
    stray = next((a for a in args if isinstance(a, ast.Name) and a.name in activations), None)
    if stray is None:
        return False
    if "activation" in values:
        report.error(stray.span, f"`{layer.word}` takes one activation word, got `{stray.name}` "
                                 f"and `{values['activation']}`",
                     f"make the second a layer of its own: `... {stray.name} -> {values['activation']}`")
    else:
        report.error(stray.span, f"`{layer.word}` takes no activation word",
                     f"make it a layer of its own: `{layer.word} ... -> {stray.name}`")
    return True


def _too_many(kind: LayerKind, layer: ast.Layer, extra: ast.Value, args: list[ast.Value], activations: list[str],
              ctx: Context, report: Report) -> None:
    """A positional argument past the kind's slots: a misspelt activation, a word that
    is not a block parameter, a size written with spaces, or simply one too many."""
    spaced_x = next((a for a in args[1:-1] if isinstance(a, ast.Name) and a.name == "x"), None)
    if spaced_x is not None:
        report.error(spaced_x.span, "a size is written without spaces around its `x`",
                     "write `3x3`, `kxk`, `3xk` or `(2*c)x(h*w)`")
    elif kind.takes_activation and isinstance(extra, ast.Name) and extra is args[-1]:
        report.error(extra.span, f"unknown activation `{extra.name}`",
                     did_you_mean(extra.name, activations) or f"activations: {', '.join(activations)}")
    elif isinstance(extra, ast.Name) and ctx.block:
        report.error(extra.span, f"unknown name `{extra.name}` in block `{ctx.block.name}`",
                     did_you_mean(extra.name, ctx.bindings) or "only the block's parameters can be used as values")
    elif isinstance(extra, ast.Number) and extra.value < 0 and extra is not args[0] and any(extra is a for a in layer.args):
        # written `-1` after another argument, where `c -1` was meant as `c-1`
        before = ast.written(layer.args[[id(a) for a in args].index(id(extra)) - 1])  # as written: `c`, not its value
        report.error(extra.span, f"too many arguments for `{layer.word}`",
                     f"a sign after a space starts an argument of its own; to subtract, write "
                     f"`{before}-{ast.written(extra)[1:]}` or `{before} - {ast.written(extra)[1:]}`")
    else:
        usage = " ".join(s.field for s in kind.slots) or "no positional arguments"
        report.error(extra.span, f"too many arguments for `{layer.word}`",
                     f"it takes: {usage}; for example `{kind.example}`")


def unknown_names(layer: ast.Layer, ctx: Context) -> dict[Span, Diagnostic]:
    """Inside a block, bare words that are not its parameters (by span): `conv d 3x3` in
    `block basic(c)`. Some are legitimate words (pad=same); a wrong-type error on one of
    them is reported as an unknown name rather than a wrong type."""
    block = ctx.block
    if block is None:
        return {}
    params = [p.name for p in block.params]
    hint_otherwise = f"the block's parameters are: {', '.join(params)}" if params else f"block `{block.name}` has no parameters"
    values = [*layer.args, *(o.value for o in layer.options)]
    return {v.span: Diagnostic(f"unknown name `{v.name}` in block `{block.name}`", v.span,
                               did_you_mean(v.name, params) or hint_otherwise)
            for v in values if isinstance(v, ast.Name) and v.name not in ctx.bindings
            and not is_size_word(v.name, ctx.bindings)}

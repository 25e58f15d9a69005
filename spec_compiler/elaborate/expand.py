"""Pass 2: expansion. Every layer word is resolved (a registry kind, a block, or
`repeat`); `repeat` bodies are copied out, block uses bind their arguments and expand
their body, and structural kinds get their bodies split by layout. The result is a
tree of `Use`s; arguments are read later, in the context each use carries."""

from __future__ import annotations

from collections.abc import Sequence

from .. import ast
from ..errors import did_you_mean
from ..layers import REGISTRY
from ..layers.base import LayerKind
from .bodies import marker_owners, split_bodies
from .context import Context, substitute_all, substitute_or_report
from .declarations import RESERVED_FOR_EVERY_LAYER
from .report import Report
from .uses import Use

MAX_BLOCK_DEPTH = 50  # blocks using blocks using blocks...: deeper would exhaust Python's stack
MAX_LAYERS = 50_000  # after expanding blocks and repeats: past this, `repeat 10**9 { }` would hang
BLOCK_KIND = "group"  # a block use becomes a node of this kind: a named sub-stack holding the block's layers


class Expander:
    """Expands layers, one line after another: the limit on layers made counts them all."""

    def __init__(self, blocks: dict[str, ast.BlockDef], report: Report):
        self.blocks = blocks
        self.report = report
        self.markers = marker_owners()
        self.layers_made = 0  # layers expanded so far (repeats and blocks multiply them)
        self.too_many_reported = False

    def sequence(self, statements: Sequence[ast.Layer | ast.Statement], ctx: Context) -> list[Use]:
        uses: list[Use] = []
        for item in statements:
            if isinstance(item, ast.Layer):
                uses.extend(self.layer(item, ctx))
            elif isinstance(item, ast.Chain):
                for layer in item.layers:
                    uses.extend(self.layer(layer, ctx))
            else:
                what = {ast.ModelDecl: "`model`", ast.InputDecl: "`input`", ast.BlockDef: "a block definition",
                        ast.TrainSection: "a `train` section", ast.Assignment: "a named tensor (`x = ...`)",
                        ast.OutputDecl: "`output`"}[type(item)]
                self.report.error(item.span, f"{what} cannot appear inside a body", "move it to the top level of the file")
        return uses

    def layer(self, layer: ast.Layer, ctx: Context) -> list[Use]:
        if self.layers_made >= MAX_LAYERS:
            if not self.too_many_reported:
                self.too_many_reported = True
                self.report.error(layer.span, f"the model expands to more than {MAX_LAYERS:,} layers",
                                  "use fewer or smaller `repeat`s and block uses")
            return []
        self.layers_made += 1
        if layer.word == "repeat":
            return self.repeat(layer, ctx)
        if layer.word in self.blocks:
            use = self.block_use(layer, ctx)
            return [use] if use else []
        if layer.word in self.markers:
            owners = [f"`{o}`" for o in self.markers[layer.word]]
            owners = ", ".join(owners[:-1]) + " or " + owners[-1] if len(owners) > 1 else owners[0]
            self.report.error(layer.span, f"`{layer.word} {{ }}` is only allowed directly inside {owners}")
            return []
        kind = REGISTRY.lookup(layer.word)
        if kind is None:
            self.report.error(layer.span, f"unknown {'layer or block' if self.blocks else 'layer'} `{layer.word}`",
                              did_you_mean(layer.word, [*REGISTRY.words(), *self.blocks, "repeat"])
                              or "see docs/language.md for the layer catalogue")
            return []
        use = self.registry_use(kind, layer, ctx)
        return [use] if use else []

    def repeat(self, layer: ast.Layer, ctx: Context) -> list[Use]:
        args = substitute_all(layer.args, ctx, self.report)
        if args is None:
            return []
        if len(args) != 1 or not isinstance(args[0], ast.Number) or not isinstance(args[0].value, int) or args[0].value < 1:
            self.report.error(args[0].span if args else layer.span, "repeat needs one whole number of times, at least 1",
                              "write `repeat 3 { ... }`")
            return []
        if layer.options:
            self.report.error(layer.options[0].span, "repeat takes no options")
        if layer.body is None:
            self.report.error(layer.span, "repeat needs a body", "write `repeat 3 { conv 64 3x3 pad=same relu }`")
            return []
        if not layer.body:
            self.report.error(layer.span, "repeat needs at least one layer in its body",
                              "write `repeat 3 { conv 64 3x3 pad=same relu }`, or remove the empty repeat")
            return []
        times = args[0].value
        at_least = times * sum(len(item.layers) if isinstance(item, ast.Chain) else 1 for item in layer.body)
        if self.layers_made + at_least > MAX_LAYERS:  # refused before copying anything
            if not self.too_many_reported:
                self.too_many_reported = True
                self.report.error(layer.span, f"the model expands to more than {MAX_LAYERS:,} layers "
                                              f"(this repeat adds at least {at_least:,})",
                                  "use fewer or smaller `repeat`s and block uses")
            return []
        uses: list[Use] = []
        for copy in range(times):
            if self.layers_made >= MAX_LAYERS:
                self.layer(layer, ctx)  # reports the limit once
                break
            uses.extend(self.sequence(layer.body, Context(ctx.bindings, ctx.expanding, copy)))
        return uses

    def block_use(self, layer: ast.Layer, ctx: Context) -> Use | None:
        """A block use: its arguments bound to the block's parameters, its body expanded."""
        block = self.blocks[layer.word]
        chain = ctx.chain
        if len(chain) >= MAX_BLOCK_DEPTH:
            self.report.error(layer.span, f"blocks nested more than {MAX_BLOCK_DEPTH} deep "
                                          f"({' -> '.join(chain[:3])} -> ... -> {block.name})",
                              "use fewer levels of blocks inside blocks")
            return None
        if block.name in chain:
            cycle = " -> ".join((*chain[chain.index(block.name):], block.name))
            self.report.error(layer.span, f"block `{block.name}` uses itself ({cycle})", "a block cannot contain itself")
            return None
        if layer.body is not None:
            self.report.error(layer.span, f"block `{block.name}` takes arguments, not a `{{ }}` body")
        bound = self.bind(block, layer, ctx)
        if bound is None:
            return None
        bound_ctx, own_options = bound
        body = self.sequence(block.body, bound_ctx)
        return Use(REGISTRY[BLOCK_KIND], layer, ctx, (tuple(body),), block=block, block_options=own_options)

    def bind(self, block: ast.BlockDef, layer: ast.Layer, ctx: Context):
        """The context of the block's body (its parameters bound to this use's arguments),
        and the use's own `name=` and `frozen=` options; None after reporting a mistake."""
        params = [p.name for p in block.params]
        bound: dict[str, ast.Value] = {}
        args = substitute_all(layer.args, ctx, self.report)
        if args is None:
            return None
        if len(args) > len(params):
            self.report.error(args[len(params)].span, f"block `{block.name}` takes {len(params)} argument(s), got {len(args)}",
                              f"its parameters: ({', '.join(params)})")
            return None
        bound.update(zip(params, args))
        own_options: dict[str, ast.Option] = {}
        for option in layer.options:
            if option.key in RESERVED_FOR_EVERY_LAYER:
                own_options[option.key] = option
            elif option.key not in params:
                self.report.error(option.span, f"block `{block.name}` has no parameter `{option.key}`",
                                  did_you_mean(option.key, params) or f"its parameters: ({', '.join(params)})")
                return None
            elif option.key in bound:
                self.report.error(option.span, f"block argument `{option.key}` is given twice")
                return None
            else:
                value = substitute_or_report(option.value, ctx, self.report)
                if value is None:
                    return None
                bound[option.key] = value
        for index, param in enumerate(block.params):
            if param.name not in bound:
                if param.default is None:
                    self.report.error(layer.span, f"block `{block.name}` needs a value for `{param.name}`",
                                      f"call it as `{block.name} {' '.join(params)}` or with {param.name}=...")
                    return None
                # a default reads the parameters before it: `block b(c, e=4*c)`
                earlier = {p: bound[p] for p in params[:index]}
                value = substitute_or_report(param.default, Context(earlier, (*ctx.expanding, block)), self.report)
                if value is None:
                    return None
                bound[param.name] = value
        return Context(bound, (*ctx.expanding, block)), own_options

    def registry_use(self, kind: LayerKind, layer: ast.Layer, ctx: Context) -> Use | None:
        if kind.layout is None:
            if layer.body is not None:
                self.report.error(layer.span, f"`{layer.word}` takes no `{{ }}` body")
            return Use(kind, layer, ctx)
        if layer.body is None:
            self.report.error(layer.span, f"`{layer.word}` needs a `{{ }}` body", f"for example: {kind.example}")
            return None
        bodies, body_spans = split_bodies(kind, layer, ctx, self.sequence, self.report)
        return Use(kind, layer, ctx, bodies, body_spans)

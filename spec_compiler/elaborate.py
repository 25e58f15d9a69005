"""Elaboration: AST to IR.

Expands block uses and `repeat`, substitutes block arguments, fills positional
arguments into each kind's schema, validates parameters (pydantic), and names every
node. All mistakes in the file are collected and reported together.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from . import ast
from .errors import Diagnostic, DiagnosticSink, Span, did_you_mean
from .ir import InputSpec, ModelIR, Node
from .layers import REGISTRY
from .layers.base import LayerKind
from .options import UnknownChoice
from .shapes import TensorType
from .train_config import TrainConfig

INPUT_KINDS = ("image", "vector", "sequence", "tokens")
MAX_BLOCK_DEPTH = 50  # blocks using blocks using blocks...: deeper would exhaust Python's stack
MAX_LAYERS = 50_000  # after expanding blocks and repeats: past this, `repeat 10**9 { }` would hang
BODY_MARKERS = {"branch": ("concat", "add"), "shortcut": ("residual",)}
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class InputParams(BaseModel):
    model_config = {"extra": "forbid"}
    vocab: int | None = None
    name: str = "input"


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


@dataclass(frozen=True)
class Context:
    """Where elaboration is: block arguments in force, blocks being expanded, repeat copy."""

    bindings: dict[str, ast.Value] = field(default_factory=dict)
    expanding: tuple[str, ...] = ()
    copy: int = 0


def elaborate(spec: ast.SpecFile, max_errors: int = 20) -> ModelIR:
    return _Elaborator(spec, DiagnosticSink(limit=max_errors)).run()


class _Elaborator:
    def __init__(self, spec: ast.SpecFile, sink: DiagnosticSink):
        self.spec = spec
        self.sink = sink
        self.blocks: dict[str, ast.BlockDef] = {}
        self.layers_made = 0  # layers expanded so far (repeats and blocks multiply them)
        self.too_many_reported = False

    def error(self, span: Span | None, message: str, hint: str | None = None) -> None:
        self.sink.add(Diagnostic(message, span, hint))

    # --- top level ----------------------------------------------------------------

    def run(self) -> ModelIR:
        model_name: str | None = None
        input_spec: InputSpec | None = None
        train = TrainConfig()
        train_seen = False
        layers: list[ast.Layer] = []
        seen_model = seen_input = None
        for statement in self.spec.statements:
            if isinstance(statement, ast.ModelDecl):
                if seen_model:
                    self.error(statement.span, "a second `model` line", f"the model is already named at line {seen_model.line}")
                seen_model, model_name = statement.span, statement.name
            elif isinstance(statement, ast.InputDecl):
                if seen_input:
                    self.error(statement.span, "a second `input` line",
                               f"a model has one input, declared at line {seen_input.line}")
                    continue
                seen_input = statement.span
                input_spec = self.input(statement)
            elif isinstance(statement, ast.BlockDef):
                self.define_block(statement)
            elif isinstance(statement, ast.TrainSection):
                if train_seen:
                    self.error(statement.span, "a second `train` section", "merge them into one")
                train_seen = True
                train = self.train(statement) or train
            else:
                layers.extend(statement.layers)
        if seen_input is None:
            self.error(Span(self.spec.path, 1, 1, 2), "the spec has no `input` line",
                       "declare the input first, e.g. `input image 1x28x28` or `input tokens 100 vocab=5000`")
        nodes = self.sequence(layers, Scope(), Context())
        if not nodes and seen_input is not None and not self.sink.diagnostics:
            self.error(seen_input, "the model has no layers", "add layers after the `input` line")
        self.sink.raise_if_any(self.spec.source)
        assert input_spec is not None
        return ModelIR(
            name=model_name or _stem(self.spec.path), input=input_spec, nodes=tuple(nodes), train=train,
            path=self.spec.path, source=self.spec.source,
        )

    def input(self, decl: ast.InputDecl) -> InputSpec | None:
        if decl.kind not in INPUT_KINDS:
            self.error(decl.span, f"unknown input kind `{decl.kind}`",
                       did_you_mean(decl.kind, INPUT_KINDS) or f"use one of: {', '.join(INPUT_KINDS)}")
            return None
        dims: list[int | str] = []
        for arg in decl.args:
            if isinstance(arg, ast.Dims):
                dims.extend(arg.items)
            elif isinstance(arg, ast.Number) and isinstance(arg.value, int) and arg.value > 0:
                dims.append(arg.value)
            elif isinstance(arg, ast.Unknown):
                dims.append("?")
            elif isinstance(arg, ast.Name):
                dims.append(arg.name)
            else:
                self.error(arg.span, "an input size must be a positive whole number, `?` or a name")
                return None
        if any(d == 0 for d in dims):
            self.error(decl.args[0].span, "an input size of 0", "every size must be at least 1")
            return None
        params = self.validate(InputParams, {o.key: ast.plain(o.value) for o in decl.options},
                               {o.key: o.span for o in decl.options}, decl.span, "input")
        if params is None:
            return None
        expected = {"image": "3 sizes, CxHxW (1x28x28 for grayscale)", "vector": "1 size",
                    "sequence": "a length and feature sizes, TxF (?x16 for any length)", "tokens": "1 length (150 or ?)"}
        rank_ok = {"image": len(dims) == 3, "vector": len(dims) == 1, "sequence": len(dims) >= 2,
                   "tokens": len(dims) == 1}[decl.kind]
        where = decl.args[0].span if decl.args else decl.span
        if not rank_ok:
            self.error(where, f"`input {decl.kind}` needs {expected[decl.kind]}, got {len(dims)}")
            return None
        symbolic_ok = {"sequence", "tokens"}
        if any(isinstance(d, str) for d in dims[1:]) or (isinstance(dims[0], str) and decl.kind not in symbolic_ok):
            self.error(where, "only the length of a sequence or tokens input may be unknown",
                       "write the sizes as numbers; `?` or a name is allowed for the first size of a sequence")
            return None
        if decl.kind == "tokens":
            if params.vocab is None:
                self.error(decl.span, "a tokens input needs its vocabulary size", "add vocab=N, e.g. `input tokens 150 vocab=1000`")
                return None
            if params.vocab < 2:
                self.error(decl.span, f"vocab must be at least 2, got {params.vocab}")
                return None
            tensor = TensorType(tuple(dims), "int", params.vocab)
        else:
            if params.vocab is not None:
                self.error(decl.span, "vocab= applies only to a tokens input")
            tensor = TensorType(tuple(dims))
        if not NAME_PATTERN.match(params.name):
            self.error(decl.span, f"input name `{params.name}` is not a valid name", "use letters, digits and _")
        return InputSpec(decl.kind, tensor, decl.span, params.name)

    def define_block(self, block: ast.BlockDef) -> None:
        if block.name in self.blocks:
            first = self.blocks[block.name].span
            self.error(block.span, f"block `{block.name}` is defined twice", f"the first definition is at line {first.line}")
            return
        if REGISTRY.lookup(block.name) or block.name in ("repeat", *BODY_MARKERS):
            self.error(block.span, f"block name `{block.name}` is already a layer word", "choose another name")
            return
        names = [p.name for p in block.params]
        for param in block.params:
            if names.count(param.name) > 1:
                self.error(param.span, f"parameter `{param.name}` appears twice in block `{block.name}`")
            if param.name in ("name", "frozen"):
                self.error(param.span, f"`{param.name}` is reserved for every layer and cannot be a block parameter")
        self.blocks[block.name] = block

    def train(self, section: ast.TrainSection) -> TrainConfig | None:
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        for option in section.options:
            if option.key in values:
                self.error(option.span, f"`{option.key}` is set twice in the train section")
            values[option.key] = ast.plain(option.value)
            spans[option.key] = option.value.span
        for key, span in list(spans.items()):
            if key not in TrainConfig.model_fields:
                self.error(next(o.span for o in section.options if o.key == key), f"unknown train option `{key}`",
                           did_you_mean(key, TrainConfig.model_fields) or
                           f"train options: {', '.join(TrainConfig.model_fields)}")
                values.pop(key)
        return self.validate(TrainConfig, values, spans, section.span, "train")

    # --- sequences and layers -----------------------------------------------------

    def sequence(self, statements, scope: Scope, ctx: Context) -> list[Node]:
        nodes: list[Node] = []
        for item in statements:
            if isinstance(item, ast.Layer):
                nodes.extend(self.layer(item, scope, ctx))
            elif isinstance(item, ast.Chain):
                for layer in item.layers:
                    nodes.extend(self.layer(layer, scope, ctx))
            else:
                what = {ast.ModelDecl: "`model`", ast.InputDecl: "`input`", ast.BlockDef: "a block definition",
                        ast.TrainSection: "a `train` section"}[type(item)]
                self.error(item.span, f"{what} cannot appear inside a body", "move it to the top level of the file")
        return nodes

    def layer(self, layer: ast.Layer, scope: Scope, ctx: Context) -> list[Node]:
        if self.layers_made >= MAX_LAYERS:
            if not self.too_many_reported:
                self.too_many_reported = True
                self.error(layer.span, f"the model expands to more than {MAX_LAYERS:,} layers",
                           "use fewer or smaller `repeat`s and block uses")
            return []
        self.layers_made += 1
        if layer.word == "repeat":
            return self.repeat(layer, scope, ctx)
        if layer.word in self.blocks:
            node = self.block_use(layer, scope, ctx)
            return [node] if node else []
        if layer.word in BODY_MARKERS:
            owners = " or ".join(f"`{o}`" for o in BODY_MARKERS[layer.word])
            self.error(layer.span, f"`{layer.word} {{ }}` is only allowed directly inside {owners}")
            return []
        kind = REGISTRY.lookup(layer.word)
        if kind is None:
            self.error(layer.span, f"unknown {'layer or block' if self.blocks else 'layer'} `{layer.word}`",
                       did_you_mean(layer.word, [*REGISTRY.words(), *self.blocks, "repeat"])
                       or "see docs/language.md for the layer catalogue")
            return []
        node = self.registry_layer(kind, layer, scope, ctx)
        return [node] if node else []

    def repeat(self, layer: ast.Layer, scope: Scope, ctx: Context) -> list[Node]:
        args = [self.substitute(a, ctx) for a in layer.args]
        if len(args) != 1 or not isinstance(args[0], ast.Number) or not isinstance(args[0].value, int) or args[0].value < 1:
            self.error(args[0].span if args else layer.span, "repeat needs one whole number of times, at least 1",
                       "write `repeat 3 { ... }`")
            return []
        if layer.options:
            self.error(layer.options[0].span, "repeat takes no options")
        if layer.body is None:
            self.error(layer.span, "repeat needs a body", "write `repeat 3 { conv 64 3x3 pad=same relu }`")
            return []
        nodes: list[Node] = []
        for copy in range(args[0].value):
            if self.layers_made >= MAX_LAYERS:
                self.layer(layer, scope, ctx)  # reports the limit once
                break
            nodes.extend(self.sequence(layer.body, scope, Context(ctx.bindings, ctx.expanding, copy)))
        return nodes

    def block_use(self, layer: ast.Layer, scope: Scope, ctx: Context) -> Node | None:
        block = self.blocks[layer.word]
        if len(ctx.expanding) >= MAX_BLOCK_DEPTH:
            self.error(layer.span, f"blocks nested more than {MAX_BLOCK_DEPTH} deep "
                                   f"({' -> '.join(ctx.expanding[:3])} -> ... -> {block.name})",
                       "use fewer levels of blocks inside blocks")
            return None
        if block.name in ctx.expanding:
            chain = " -> ".join((*ctx.expanding[ctx.expanding.index(block.name):], block.name))
            self.error(layer.span, f"block `{block.name}` uses itself ({chain})", "a block cannot contain itself")
            return None
        if layer.body is not None:
            self.error(layer.span, f"block `{block.name}` takes arguments, not a `{{ }}` body")
        params = [p.name for p in block.params]
        bound: dict[str, ast.Value] = {}
        args = [self.substitute(a, ctx) for a in layer.args]
        if len(args) > len(params):
            self.error(args[len(params)].span,
                       f"block `{block.name}` takes {len(params)} argument(s), got {len(args)}",
                       f"its parameters: ({', '.join(params)})")
            return None
        bound.update(zip(params, args))
        node_options: dict[str, ast.Option] = {}
        for option in layer.options:
            if option.key in ("name", "frozen"):
                node_options[option.key] = option
            elif option.key not in params:
                self.error(option.span, f"block `{block.name}` has no parameter `{option.key}`",
                           did_you_mean(option.key, params) or f"its parameters: ({', '.join(params)})")
                return None
            elif option.key in bound:
                self.error(option.span, f"block argument `{option.key}` is given twice")
                return None
            else:
                bound[option.key] = self.substitute(option.value, ctx)
        for param in block.params:
            if param.name not in bound:
                if param.default is None:
                    self.error(layer.span, f"block `{block.name}` needs a value for `{param.name}`",
                               f"call it as `{block.name} {' '.join(params)}` or with {param.name}=...")
                    return None
                bound[param.name] = self.substitute(param.default, ctx)
        name = self.node_name(layer.word, node_options.get("name"), scope, ctx)
        inner = Context(bound, (*ctx.expanding, block.name))
        body = self.sequence(block.body, Scope(), inner)
        group = REGISTRY["group"]
        params_model = self.validate(
            group.params, {k: ast.plain(self.substitute(o.value, ctx)) for k, o in node_options.items()},
            {k: o.value.span for k, o in node_options.items()}, layer.span, block.name,
        )
        if params_model is None or name is None:
            return None
        return Node("group", name, params_model, layer.span, (tuple(body),))

    def registry_layer(self, kind: LayerKind, layer: ast.Layer, scope: Scope, ctx: Context) -> Node | None:
        bodies: tuple[tuple[Node, ...], ...] = ()
        body_spans: tuple[Span, ...] = ()
        if kind.body is None and layer.body is not None:
            self.error(layer.span, f"`{layer.word}` takes no `{{ }}` body")
        elif kind.body is not None:
            if layer.body is None:
                self.error(layer.span, f"`{layer.word}` needs a `{{ }}` body", f"for example: {kind.example}")
                return None
            bodies, body_spans = self.bodies(kind, layer, ctx)
        values, spans = self.arguments(kind, layer, ctx)
        if values is None:
            return None
        unbound = self.unbound_names(layer, ctx)
        params = self.validate(kind.params, values, spans, layer.span, layer.word, unbound)
        explicit = next((o for o in layer.options if o.key == "name"), None)
        name = self.node_name(kind.name, explicit, scope, ctx)
        if params is None or name is None:
            return None
        return Node(kind.name, name, params, layer.span, bodies, body_spans)

    def bodies(self, kind: LayerKind, layer: ast.Layer, ctx: Context):
        statements = [layer_ for item in layer.body for layer_ in _layers_of(item)]
        others = [item for item in layer.body if not isinstance(item, ast.Chain)]
        if others:
            self.sequence(others, Scope(), ctx)  # reports what does not belong in a body
        if kind.body == "sequence":
            if any(s.word in BODY_MARKERS for s in statements):
                marker = next(s for s in statements if s.word in BODY_MARKERS)
                self.layer(marker, Scope(), ctx)
            return (tuple(self.sequence(statements, Scope(), ctx)),), (layer.span,)
        if kind.body == "residual":
            shortcuts = [s for s in statements if s.word == "shortcut"]
            main = [s for s in statements if s.word != "shortcut"]
            for extra in shortcuts[1:]:
                self.error(extra.span, "a residual has at most one `shortcut { }`")
            shortcut: list[Node] = []
            span = layer.span
            if shortcuts:
                span = shortcuts[0].span
                if shortcuts[0].body is None or shortcuts[0].args or shortcuts[0].options:
                    self.error(shortcuts[0].span, "write the projection as `shortcut { conv C 1x1 stride=S }`")
                else:
                    shortcut = self.sequence(shortcuts[0].body, Scope(), ctx)
            return (tuple(self.sequence(main, Scope(), ctx)), tuple(shortcut)), (layer.span, span)
        # branches
        branches: list[tuple[Node, ...]] = []
        spans: list[Span] = []
        for statement in statements:
            if statement.word != "branch" or statement.body is None:
                self.error(statement.span, f"inside `{layer.word}`, write each path as `branch {{ ... }}`",
                           f"for example: {kind.example}")
                continue
            branches.append(tuple(self.sequence(statement.body, Scope(), ctx)))
            spans.append(statement.span)
        if len(branches) < 2 and not self.sink.diagnostics:
            self.error(layer.span, f"`{layer.word}` needs at least two `branch {{ }}` bodies")
        return tuple(branches), tuple(spans)

    def arguments(self, kind: LayerKind, layer: ast.Layer, ctx: Context):
        """Fill the schema's fields from positional arguments and options."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        args = [self.substitute(a, ctx) for a in layer.args]
        activations = REGISTRY.activations()
        if kind.takes_activation and args and isinstance(args[-1], ast.Name) and args[-1].name in activations:
            values["activation"], spans["activation"] = args[-1].name, args[-1].span
            args.pop()
        # an activation word left among the positional arguments: a second one, or one
        # on a kind that takes none (`dense 10 relu softmax`, `dropout 0.5 relu`)
        stray = next((a for a in args if isinstance(a, ast.Name) and a.name in activations), None)
        if stray is not None:
            if "activation" in values:
                self.error(stray.span, f"`{layer.word}` takes one activation word, got `{stray.name}` "
                                       f"and `{values['activation']}`",
                           f"make the second a layer of its own: `... {stray.name} -> {values['activation']}`")
            else:
                self.error(stray.span, f"`{layer.word}` takes no activation word",
                           f"make it a layer of its own: `{layer.word} ... -> {stray.name}`")
            return None, None
        queue = list(args)
        for slot in kind.slots:
            if not queue:
                break
            arg = queue.pop(0)
            if isinstance(arg, ast.Dims) and slot.takes == "scalar" and len(arg.items) > 1:
                first_width = len(str(arg.items[0])) + 1
                rest_span = Span(arg.span.file, arg.span.line, arg.span.column + first_width, arg.span.end_column)
                queue.insert(0, ast.Dims(arg.items[1:], rest_span))
                values[slot.field], spans[slot.field] = arg.items[0], arg.span
            elif isinstance(arg, ast.Dims) and len(arg.items) == 1 and slot.takes == "scalar":
                values[slot.field], spans[slot.field] = arg.items[0], arg.span
            else:
                values[slot.field], spans[slot.field] = ast.plain(arg), arg.span
        if queue:
            extra = queue[0]
            if kind.takes_activation and isinstance(extra, ast.Name) and extra is args[-1]:
                self.error(extra.span, f"unknown activation `{extra.name}`",
                           did_you_mean(extra.name, activations) or f"activations: {', '.join(activations)}")
            elif isinstance(extra, ast.Name) and ctx.expanding:
                self.error(extra.span, f"unknown name `{extra.name}` in block `{ctx.expanding[-1]}`",
                           did_you_mean(extra.name, ctx.bindings) or "only the block's parameters can be used as values")
            else:
                usage = " ".join(s.field for s in kind.slots) or "no positional arguments"
                self.error(extra.span, f"too many arguments for `{layer.word}`",
                           f"it takes: {usage}; for example `{kind.example}`")
            return None, None
        for option in layer.options:
            if option.key not in kind.params.model_fields:
                fields = [f for f in kind.params.model_fields]
                self.error(option.span, f"`{layer.word}` has no option `{option.key}`",
                           did_you_mean(option.key, fields) or f"its options: {', '.join(fields)}")
                return None, None
            if option.key in values:
                self.error(option.span, f"`{option.key}` is given twice (positionally and as an option)"
                           if option.key in spans and option.key not in {o.key for o in layer.options[:layer.options.index(option)]}
                           else f"option `{option.key}` is given twice")
                return None, None
            value = self.substitute(option.value, ctx)
            values[option.key] = ast.plain(value)
            spans[option.key] = value.span  # a block argument: where the use passes it
        return values, spans

    def unbound_names(self, layer: ast.Layer, ctx: Context) -> dict[Span, tuple[str, str]]:
        """Inside a block, bare names that are not its parameters (by span): `conv d 3x3` in
        `block basic(c)`. Some are legitimate words (pad=same); a type error on one of them
        is reported as an unknown name rather than a wrong type."""
        if not ctx.expanding:
            return {}
        values = [*layer.args, *(o.value for o in layer.options)]
        return {v.span: (v.name, ctx.expanding[-1]) for v in values
                if isinstance(v, ast.Name) and v.name not in ctx.bindings}

    def validate(self, model: type[BaseModel], values: dict, spans: dict[str, Span], where: Span, what: str,
                 unbound: dict[Span, tuple[str, str]] | None = None):
        try:
            return model.model_validate(values)
        except ValidationError as error:
            for item in _merge_union_errors(error.errors()):
                field_name = str(item["loc"][0]) if item["loc"] else None
                span = spans.get(field_name, where) if field_name else where
                if unbound and span in unbound and item["type"] in (*_TYPE_ERRORS, "union_type"):
                    self.sink.add(self.unknown_name(*unbound[span], span))
                    continue
                diagnostic = _validation_diagnostic(item, what, field_name, values.get(field_name), span)
                if item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
                    fields = [f for f in model.model_fields if f not in values]
                    diagnostic = Diagnostic(diagnostic.message, diagnostic.span,
                                            did_you_mean(str(item["loc"][0]), fields)
                                            or f"its options: {', '.join(model.model_fields)}")
                self.sink.add(diagnostic)
            return None

    def unknown_name(self, name: str, block: str, span: Span) -> Diagnostic:
        params = [p.name for p in self.blocks[block].params]
        return Diagnostic(f"unknown name `{name}` in block `{block}`", span,
                          did_you_mean(name, params) or (f"the block's parameters are: {', '.join(params)}"
                                                         if params else f"block `{block}` has no parameters"))

    def node_name(self, kind: str, explicit: ast.Option | None, scope: Scope, ctx: Context) -> str | None:
        if explicit is None:
            return scope.auto_name(kind)
        value = self.substitute(explicit.value, ctx)
        name = ast.plain(value)
        if not isinstance(name, str) or not NAME_PATTERN.match(name) or keyword.iskeyword(name):
            self.error(value.span, f"layer name `{name}` is not a valid name", "use letters, digits and _, starting with a letter")
            return None
        if ctx.copy:
            name = f"{name}_{ctx.copy + 1}"
        if name in scope.used:
            self.error(value.span, f"layer name `{name}` is used twice", "give each layer a different name")
            return None
        scope.used.add(name)
        return name

    def substitute(self, value: ast.Value, ctx: Context) -> ast.Value:
        """Replace block parameters by the arguments of the block use."""
        if isinstance(value, ast.Name) and value.name in ctx.bindings:
            return ctx.bindings[value.name]
        if isinstance(value, ast.ListValue):
            return ast.ListValue(tuple(self.substitute(v, ctx) for v in value.items), value.span)
        if isinstance(value, ast.Call):
            return ast.Call(value.name, tuple(self.substitute(v, ctx) for v in value.args),
                            tuple(ast.Option(o.key, self.substitute(o.value, ctx), o.span) for o in value.options),
                            value.span)
        return value


def _layers_of(item) -> list[ast.Layer]:
    return list(item.layers) if isinstance(item, ast.Chain) else []


def _stem(path: str) -> str:
    stem = re.sub(r"\.spec$", "", path.replace("\\", "/").rsplit("/", 1)[-1])
    return re.sub(r"\W", "_", stem) or "model"


_PYDANTIC_PHRASES = [
    (re.compile(r"^Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"^Input should be a valid number.*"), "must be a number"),
    (re.compile(r"^Input should be a valid boolean.*"), "must be true or false"),
    (re.compile(r"^Input should be "), "must be "),
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"^Assertion failed, "), ""),
]


def _validation_diagnostic(item: dict, what: str, field_name: str | None, value: Any, span: Span) -> Diagnostic:
    context_error = (item.get("ctx") or {}).get("error")
    if isinstance(context_error, UnknownChoice):
        return Diagnostic(f"unknown {context_error.what} `{context_error.word}`", span,
                          did_you_mean(context_error.word, context_error.choices)
                          or f"choose one of: {', '.join(context_error.choices)}")
    message = item["msg"]
    for pattern, replacement in _PYDANTIC_PHRASES:
        message = pattern.sub(replacement, message)
    message = re.sub(r"'([^'\s]*)'", r"`\1`", message)  # 'valid' or 'same' -> `valid` or `same`
    if item["type"] == "missing":
        return Diagnostic(f"`{what}` needs a value for `{field_name}`", span, _missing_hint(what))
    if item["type"] == "extra_forbidden":
        if len(item["loc"]) == 2 and isinstance(value, dict) and "kind" in value:  # adam(beta=...)
            word, fields = str(item["loc"][1]), _call_fields(value["kind"])
            return Diagnostic(f"`{value['kind']}` has no option `{word}`", span,
                              did_you_mean(word, fields) or (f"its options: {', '.join(fields)}" if fields
                                                            else f"`{value['kind']}` takes no options"))
        return Diagnostic(f"`{what}` has no option `{'.'.join(map(str, item['loc']))}`", span)
    location = ".".join(str(part) for part in item["loc"]
                        if not isinstance(part, int) and part != field_name and not _is_type_tag(part))
    if field_name and location and isinstance(value, dict) and "kind" in value:
        subject = f"{what} {field_name}={value['kind']}: {location}"  # dense init=normal: std ...
    else:
        subject = f"{what} {field_name}" + (f" ({location})" if location else "") if field_name else what
    shown = _show(item.get("input", value)) if item["type"] not in ("value_error", "assertion_error") or field_name else None
    suffix = f", got {shown}" if shown is not None and item["type"] != "value_error" else ""
    return Diagnostic(f"{subject} {message}{suffix}", span)


# pydantic error types that say "the value has the wrong type" (as opposed to "it is
# out of range"): in a union, each member reports one, and they merge into one message.
_TYPE_ERRORS = {
    "int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type", "bool_parsing",
    "string_type", "tuple_type", "list_type", "dict_type", "literal_error", "model_type", "none_required",
    "union_tag_invalid", "union_tag_not_found", "is_instance_of",
}
_TYPE_NOUNS = {
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "string_type": "a word", "tuple_type": "sizes like 3x3",
    "list_type": "a list like [1, 2]", "none_required": "none",
}


def _is_type_tag(part) -> bool:
    """pydantic's name for a member of a union in an error location: `constrained-int`,
    `tuple[constrained-int, ...]`, `literal['valid','same']`."""
    return isinstance(part, str) and (bool(re.search(r"[\[\-]", part)) or part in (
        "int", "float", "str", "bool", "tuple", "list", "dict", "none"))


def _merge_union_errors(errors: list[dict]) -> list[dict]:
    """One error per field for a union-typed field (pydantic reports one per member).

    A range error (`greater than 0`) beats type errors, since it names what the user
    meant; when every member rejects the type, the message lists what is accepted."""
    groups: dict[Any, list[dict]] = {}
    merged: list[dict] = []
    for item in errors:
        loc = item["loc"]
        if len(loc) >= 2 and _is_type_tag(loc[1]):
            if loc[0] not in groups:
                groups[loc[0]] = []
                merged.append({"_group": loc[0]})
            groups[loc[0]].append(item)
        else:
            merged.append(item)
    result = []
    for item in merged:
        if "_group" not in item:
            result.append(item)
            continue
        group = groups[item["_group"]]
        if len(group) == 1:
            result.append(group[0])
            continue
        ranged = [g for g in group if g["type"] not in _TYPE_ERRORS]
        if ranged:
            result.append(ranged[0])
            continue
        nouns: list[str] = []
        for g in group:
            noun = (g.get("ctx") or {}).get("expected") if g["type"] == "literal_error" else _TYPE_NOUNS.get(g["type"])
            if noun and noun not in nouns:
                nouns.append(noun)
        choices = ", ".join(nouns[:-1]) + f" or {nouns[-1]}" if len(nouns) > 1 else (nouns[0] if nouns else "valid")
        result.append({**group[0], "type": "union_type", "msg": f"must be {choices}", "loc": (item["_group"],)})
    return result


def _call_fields(kind: str) -> list[str]:
    """The options of an initializer, regularizer, constraint, loss, optimizer... by name."""
    from . import options, train_config

    tables = [options.INITIALIZERS, options.REGULARIZERS, options.CONSTRAINTS, train_config.LOSSES,
              train_config.OPTIMIZERS, train_config.SCHEDULES, train_config.METRICS, train_config.AUGMENTATIONS,
              train_config.NORMALIZATIONS, {"early_stopping": train_config.EARLY_STOPPING}]
    fields: list[str] = []
    for table in tables:
        if kind in table:
            fields += [f for f in table[kind].model_fields if f != "kind" and f not in fields]
    return fields


def _missing_hint(what: str) -> str | None:
    kind = REGISTRY.lookup(what)
    return f"for example: `{kind.example}`" if kind and kind.example else None


def _show(value: Any) -> str | None:
    if isinstance(value, (dict, BaseModel)):
        return None
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)




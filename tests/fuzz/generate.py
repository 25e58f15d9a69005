"""Random valid specs, grown statement by statement over the registry's kinds.

A candidate is kept only when specc accepts the spec with it, so specc's own shape
rules (not a copy of them) decide what fits, and every generated spec is valid unless
specc itself misbehaves: then the generator stops and hands back the text that made it
misbehave (`Generated.trouble`), for the oracle to classify. Bodies of structural kinds
are grown the same way, wrapped in `group { }` to learn the shape they produce.

Covered: every registry kind, its aliases, positional and `key=value` arguments,
trailing activation words, init/regularizer/constraint calls, blocks with parameters
and defaults, `repeat`, residual with and without shortcut, concat/add branches, group,
timedistributed, bidirectional, `?` and named lengths, names, `frozen`, comments, `;`,
`->` across lines, a train section, block parameters written as expressions. A quarter
of the specs are graphs: one or two named inputs, named lines reading earlier tensors,
merges of two tensors at a line's head, further uses of a named layer, and an `output`
line listing every tensor nothing else reads. Models stay small (at most 50,000
parameters).
"""

from __future__ import annotations

import math
import random
import re
import types
import typing
from dataclasses import dataclass, field

from spec_compiler import REGISTRY
from spec_compiler.inference import Limits
from spec_compiler.layers.base import LayerKind
from spec_compiler.shapes import TensorType

SMALL = Limits(max_params=50_000, max_activation_bytes=4 * 2**20)
MAX_STATEMENTS = 6
GRAPH_SHARE = 0.25  # of the specs grown as graphs
MERGE_WORDS = ["add", "concat", "multiply", "maximum", "minimum", "average"]
TRIES = 4  # candidates tried for each position before giving up on it
IDENTITY = "group { }"  # appended to learn the shape so far (a spec without layers is an error)

INITIALIZERS = ["he_normal", "glorot_uniform", "xavier_normal", "orthogonal", "zeros", "ones", "lecun_uniform",
                "normal(0, 0.1)", "uniform(-0.1, 0.1)", "constant(0.1)", "truncated_normal(std=0.02)",
                "variance_scaling(scale=2, mode=fan_in)", "kaiming_uniform"]
REGULARIZERS = ["l2(0.01)", "l1(1e-4)", "l1_l2(0.01, 0.02)", "l2(l2=0)"]
CONSTRAINTS = ["max_norm(2)", "non_neg", "unit_norm", "min_max_norm(0.5, 1)", "max_norm(3, axis=0)"]
# names a person could pick that collide with Python or nn.Module attributes
TRICKY_NAMES = ["training", "forward", "train", "eval", "cuda", "_modules", "__init__", "__x", "T", "input", "self",
                "final_activation", "forward_logits", "class", "None", "true", "layers"]
JOINERS = [" -> ", " -> ", "\n", " ->\n  ", "\n  -> ", " -> # then\n", "; "]
SEPARATORS = ["\n", "\n", "\n\n", "; ", "  # note\n", "\n# a comment line\n", "\n\n# section\n\n"]


class Trouble(Exception):
    """specc did something other than accept or reject with a SpecError."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


@dataclass
class Generated:
    text: str
    trouble: bool = False  # True: specc misbehaved on `text` while it was being grown
    kinds: set[str] = field(default_factory=set)


@dataclass
class _Stats:
    """How often each kind was accepted on each kind of input: later picks favour what fits."""

    tried: dict[tuple[str, tuple], int] = field(default_factory=dict)
    kept: dict[tuple[str, tuple], int] = field(default_factory=dict)

    def weight(self, kind: str, where: tuple) -> float:
        key = (kind, where)
        return (self.kept.get(key, 0) + 1) / (self.tried.get(key, 0) + 2)

    def record(self, kind: str, where: tuple, kept: bool) -> None:
        key = (kind, where)
        self.tried[key] = self.tried.get(key, 0) + 1
        self.kept[key] = self.kept.get(key, 0) + int(kept)


LEAF_KINDS = [k for k in REGISTRY.kinds() if k.layout is None]


def _where(t: TensorType) -> tuple:
    return (t.rank, t.dtype, t.is_static)


class Grower:
    """Grows one spec. `check(text)` returns the outputs' types by name, None when specc
    rejects the text, and raises Trouble when specc misbehaves (the oracle decides how)."""

    def __init__(self, rng: random.Random, check):
        self.rng = rng
        self.outputs = check
        self.stats = _Stats()  # per spec, so that a seed always grows the same spec
        self.blocks: list[str] = []
        self.separators: list[str] = []  # after each kept statement (the last one: before a candidate)
        self.names = 0
        self.kinds: set[str] = set()

    def check(self, text: str) -> TensorType | None:
        """The type of the spec's last output, None when specc rejects it."""
        outputs = self.outputs(text)
        return None if outputs is None else list(outputs.values())[-1]

    # --- the whole file ----------------------------------------------------------

    def spec(self) -> str:
        rng = self.rng
        if rng.random() < GRAPH_SHARE:
            return self.graph()
        head = []
        if rng.random() < 0.8:
            name = rng.choice(TRICKY_NAMES) if rng.random() < 0.03 else f"m{rng.randrange(1000)}"
            head.append(f"model {name}")
        head.append(self.input_line())
        statements: list[str] = []
        t = self.check(self.text(head, [IDENTITY]))
        for _ in range(rng.randint(1, MAX_STATEMENTS) if t is not None else 0):
            grown = self.next_statement(head, statements, t)
            if grown is not None:
                statement, t = grown
                statements.append(statement)
                self.separators.append(rng.choice(SEPARATORS))
        if rng.random() < 0.2:
            section = self.train_section()
            if self.check(self.text(head, statements + [section])) is not None:
                statements.append(section)
        return self.text(head, statements)

    def text(self, head: list[str], statements: list[str]) -> str:
        """The spec: blocks, head, and the statements with the separator chosen for each."""
        body = ""
        for index, statement in enumerate(statements):
            body += statement if index == 0 else self.separators[index - 1] + statement
        return "\n".join([*self.blocks, *head]) + "\n" + body + "\n"

    def input_line(self) -> str:
        rng = self.rng
        kind = rng.choice(["image", "image", "vector", "sequence", "sequence", "tokens"])
        if kind == "image":
            dims = f"{rng.randint(1, 4)}x{rng.randint(4, 12)}x{rng.randint(4, 12)}"
        elif kind == "vector":
            dims = str(rng.randint(1, 16))
        elif kind == "sequence":
            dims = f"{rng.choice([str(rng.randint(3, 10)), '?', 'T'])}x{rng.randint(1, 8)}"
        else:
            dims = f"{rng.choice([str(rng.randint(3, 10)), '?'])} vocab={rng.randint(2, 30)}"
        extra = f" name={rng.choice(['pixels', 'x', 'tokens'])}" if rng.random() < 0.05 else ""
        return f"input {kind} {dims}{extra}"

    def next_statement(self, head: list[str], statements: list[str], t: TensorType):
        """(statement, output type) for a statement that keeps the spec valid on the
        current output `t`, or None after TRIES misses."""

        def wrap(body: str) -> str:
            return self.text(head, statements + [body])

        defined = len(self.blocks)

        for _ in range(TRIES):
            del self.blocks[defined:]  # a block defined for a candidate that was not kept
            form = self.rng.choice(["chain", "chain", "chain", "structure", "repeat", "block"])
            if form == "chain":
                candidate = self.chain(wrap, t)
            elif form == "structure":
                candidate = self.structure(wrap, t)
            elif form == "repeat":
                candidate = self.repeat(wrap, t)
            else:
                candidate = self.block_use(head, statements, t)
            out = None if candidate is None else self.check(wrap(candidate))
            if out is not None:
                return candidate, out
        del self.blocks[defined:]
        return None

    # --- chains and leaves -------------------------------------------------------

    def chain(self, wrap, t: TensorType, length: int | None = None) -> str | None:
        """1-3 leaves joined by `->` or new lines, each kept only if the spec stays valid."""
        layers: list[str] = []
        joiners: list[str] = []
        for _ in range(length or self.rng.randint(1, 3)):
            joiner = self.rng.choice(JOINERS)
            so_far = _join(layers, joiners)
            for _ in range(TRIES):
                kind = self.pick_kind(t)
                leaf = self.leaf(kind, t)
                candidate = so_far + (joiner if layers else "") + leaf
                out = self.check(wrap(candidate))
                self.stats.record(kind.name, _where(t), out is not None)
                if out is not None:
                    layers.append(leaf)
                    joiners.append(joiner)
                    self.kinds.add(kind.name)
                    t = out
                    break
            else:
                break
        return _join(layers, joiners) if layers else None

    def pick_kind(self, t: TensorType) -> LayerKind:
        where = _where(t)
        weights = [self.stats.weight(k.name, where) for k in LEAF_KINDS]
        return self.rng.choices(LEAF_KINDS, weights)[0]

    def leaf(self, kind: LayerKind, t: TensorType) -> str:
        rng = self.rng
        word = rng.choice((kind.name, *kind.aliases)) if kind.aliases and rng.random() < 0.4 else kind.name
        fields = kind.params.model_fields
        words = [word]
        given = set()
        positional = True
        for slot in kind.slots:
            info = fields[slot.field]
            required = info.is_required()
            if not required and rng.random() < 0.3:
                positional = False
                continue
            value = self.value(slot.field, info.annotation, t)
            if value is None:
                positional = False
                continue
            if positional and rng.random() < 0.8:
                words.append(value)
            else:
                positional = False
                words.append(f"{slot.field}={value}")
            given.add(slot.field)
        if kind.takes_activation and rng.random() < 0.3:
            words.append(rng.choice(REGISTRY.activations()))
            given.add("activation")
        optional = [n for n, f in fields.items() if n not in given and not f.is_required()
                    and n not in ("name", "frozen", "activation")]
        for option in rng.sample(optional, k=min(len(optional), rng.choice([0, 0, 1, 1, 2]))):
            value = self.value(option, fields[option].annotation, t)
            if value is not None:
                words.append(f"{option}={value}")
        if rng.random() < 0.1:
            words.append(f"name={self.name()}")
        if rng.random() < 0.05:
            words.append("frozen=true")
        return " ".join(words)

    def name(self) -> str:
        if self.rng.random() < 0.1:
            return self.rng.choice(TRICKY_NAMES)
        self.names += 1
        return f"n{self.names}"

    def value(self, name: str, annotation, t: TensorType) -> str | None:
        """A value for parameter `name` that often fits a layer on input `t`."""
        rng = self.rng
        static = [d for d in t.dims if isinstance(d, int)]
        if name in ("units", "filters", "key_dim"):
            return str(rng.randint(1, 8))
        if name == "heads":
            features = t.dims[-1] if t.dims and isinstance(t.dims[-1], int) else 1
            return str(rng.choice([d for d in range(1, 5) if features % d == 0] or [1]))
        if name in ("kernel", "size"):
            return rng.choice(["1", "2", "3", "2x2", "3x3", "1x3"] if t.rank >= 3 else ["1", "2", "3"])
        if name == "stride":
            return rng.choice(["1", "1", "2"])
        if name == "pad":
            return rng.choice(["same", "valid", "0", "1"])
        if name == "dilation":
            return rng.choice(["1", "1", "2"])
        if name == "groups":
            return rng.choice(["1", str(t.dims[0])]) if static else "1"
        if name in ("rate", "dropout"):
            return rng.choice(["0", "0.1", "0.5"])
        if name == "axis":
            return str(rng.randint(-1, max(t.rank - 1, 0)))
        if name == "order":
            order = list(range(t.rank))
            rng.shuffle(order)
            return "x".join(map(str, order)) if len(order) > 1 else None
        if name == "shape":
            return _reshape_target(t, rng)
        if name.endswith("init"):
            return rng.choice(INITIALIZERS)
        if name.endswith("regularizer"):
            return rng.choice(REGULARIZERS)
        if name.endswith("constraint"):
            return rng.choice(CONSTRAINTS)
        if name == "activation":
            return rng.choice(REGISTRY.activations())
        return _by_type(annotation, rng)

    # --- structure ---------------------------------------------------------------

    def body(self, wrap, t: TensorType, layers: int | None = None) -> str | None:
        """A body grown on input `t`: `wrap(body)` is the whole spec with it in place."""
        return self.chain(wrap, t, layers)

    def structure(self, wrap, t: TensorType) -> str | None:
        rng = self.rng
        form = rng.choice(["residual", "residual", "concat", "add", "group", "timedistributed", "bidirectional"])
        word = rng.choice((form, *REGISTRY[form].aliases))
        self.kinds.add(form)
        if form in ("group", "residual", "timedistributed"):
            opening = f"{word} {{ "
            inner_t = TensorType(t.dims[1:], t.dtype, t.vocab) if form == "timedistributed" and t.rank >= 2 else t
            body = self.body(lambda b: wrap(f"{opening}{b} }}"), inner_t)
            if body is None:
                return None
            if form == "residual" and self.check(wrap(f"{opening}{body} }}")) is None:
                shortcut = self.body(lambda b: wrap(f"{opening}{body}\n  shortcut {{ {b} }}\n}}"), t, 1)
                if shortcut is None:
                    return None
                return f"{opening}{body}\n  shortcut {{ {shortcut} }}\n}}"
            return _layout(opening, [body], rng)
        if form in ("concat", "add"):
            first = self.body(lambda b: wrap(f"group {{ {b} }}"), t)
            if first is None:
                return None
            branches = [first]
            for _ in range(rng.randint(1, 2)):
                other = first if form == "add" else self.body(lambda b: wrap(f"group {{ {b} }}"), t)
                branches.append(other or first)
            inner = [f"branch {{ {b} }}" for b in branches]
            return _layout(f"{form} {{ ", inner, rng)
        if t.rank != 2:
            return None
        cell = f"{rng.choice(['lstm', 'gru', 'rnn'])} {rng.randint(1, 6)}"
        if rng.random() < 0.5:
            cell += " return_sequences=true"
        merge = f" merge={rng.choice(['concat', 'sum', 'mul', 'ave'])}" if rng.random() < 0.3 else ""
        return f"bidirectional{merge} {{ {cell} }}"

    def repeat(self, wrap, t: TensorType) -> str | None:
        times = self.rng.choice([1, 2, 2, 3])
        body = self.body(lambda b: wrap(f"repeat {times} {{ {b} }}"), t)
        self.kinds.add("repeat")
        return None if body is None else _layout(f"repeat {times} {{ ", [body], self.rng)

    def block_use(self, head: list[str], statements: list[str], t: TensorType) -> str | None:
        """Define a block from a grown body, with a parameter in place of one of its numbers."""
        rng = self.rng
        body = self.body(lambda b: self.text(head, statements + [f"group {{ {b} }}"]), t)
        if body is None:
            return None
        numbers = list(re.finditer(r"(?<=[ =])[1-9][0-9]*(?=\s|$)", body))
        name = f"b{len(self.blocks) + 1}"
        self.kinds.add("block")
        if not numbers:
            self.blocks.append(f"block {name}() {{\n  {body}\n}}")
            return f"{name}"
        chosen = rng.choice(numbers)
        written = rng.choice(["p", "p", "p*2//2", "(p+1)-1", "p%1000", "-(-p)"])  # expressions equal to p
        parametrized = body[: chosen.start()] + written + body[chosen.end():]
        default = rng.random() < 0.5
        self.blocks.append(f"block {name}(p{'=' + chosen.group() if default else ''}) {{\n  {parametrized}\n}}")
        if default and rng.random() < 0.5:
            return name
        return f"{name} {chosen.group()}" if rng.random() < 0.5 else f"{name} p={chosen.group()}"

    # --- graphs ------------------------------------------------------------------

    def graph(self) -> str:
        """A graph: named inputs, then lines `tK = HEAD -> chain` whose head reads an earlier
        tensor, merges two, or runs a named layer again; an `output` line lists what no line
        reads, so that every partial spec tried is complete."""
        rng = self.rng
        inputs = [f"x{i}" for i in range(rng.choice([1, 1, 2]))]
        head = [f"model g{rng.randrange(1000)}"] if rng.random() < 0.5 else []
        head += [f"{self.input_line().split(' name=')[0]} name={name}" for name in inputs]
        tensors: dict[str, TensorType] = {}
        unread = list(inputs)
        lines: list[str] = []
        layer_names: list[str] = []

        def text(more: list[str], reading: set[str], made: str | None) -> str:
            left = [n for n in unread if n not in reading] + ([made] if made else [])
            # an input nothing reads yet is passed through, as an output may not be an input
            passed = [f"p_{n} = {n} -> {IDENTITY}" for n in left if n in inputs]
            shown = [f"p_{n}" if n in inputs else n for n in left]
            return "\n".join([*self.blocks, *head, *lines, *more, *passed, f"output {' '.join(shown)}"]) + "\n"

        probe = self.outputs("\n".join([*head, *(f"p_{n} = {n} -> {IDENTITY}" for n in inputs),
                                         f"output {' '.join('p_' + n for n in inputs)}"]) + "\n")
        if probe is None:  # the inputs alone are refused: grow a chain instead
            return self.text(head[:-len(inputs)] + [self.input_line()], [IDENTITY])
        tensors.update({n: probe[f"p_{n}"] for n in inputs})
        for index in range(1, rng.randint(2, MAX_STATEMENTS) + 1):
            name = f"t{index}"
            grown = self.graph_line(name, tensors, layer_names, lambda line, reading, made=name: text([line], reading, made))
            if grown is None:
                continue
            line, reading, made_type = grown
            lines.append(line)
            tensors[name] = made_type
            unread = [n for n in unread if n not in reading] + [name]
            layer_names += re.findall(r"\bname=(n[0-9]+)\b", line)
        return text([], set(), None)

    def graph_line(self, name: str, tensors: dict[str, TensorType], layer_names: list[str], text):
        """(line, the tensors it reads, the type it makes), or None after TRIES misses."""
        rng = self.rng
        for _ in range(TRIES):
            form = rng.choice(["read", "read", "merge", "reuse"])
            sources = list(tensors)
            if form == "merge" and len(sources) >= 2:
                a, b = rng.sample(sources, 2)
                word = rng.choice(MERGE_WORDS)
                option = f" axis={rng.choice([0, -1])}" if word == "concat" and rng.random() < 0.5 else ""
                line, reading = f"{name} = {word} {a} {b}{option}", {a, b}
            elif form == "reuse" and layer_names:
                source = rng.choice(sources)
                line, reading = f"{name} = {source} -> {rng.choice(layer_names)}", {source}
            else:
                source = rng.choice(sources)
                t = tensors[source]
                chain = self.chain(lambda c, s=source: text(f"{name} = {s} -> {c}", {s}), t)
                if chain is None:
                    continue
                line, reading = f"{name} = {source} -> {chain}", {source}
            made = self.outputs(text(line, reading))
            if made is not None and name in made:
                if form != "read" and rng.random() < 0.5:  # a chain after a merge or a reuse
                    more = self.chain(lambda c, base=line: text(f"{base} -> {c}", reading), made[name], 1)
                    if more is not None:
                        line = f"{line} -> {more}"
                        made = self.outputs(text(line, reading)) or made
                return line, reading, made[name]
        return None

    def train_section(self) -> str:
        rng = self.rng
        options = ["epochs=2", "batch=8", "optimizer=adam(lr=1e-3)", "lr=0.01", "seed=3", "validation_split=0.2",
                   "optimizer=sgd(0.1, momentum=0.9)"]
        chosen = rng.sample(options, k=rng.randint(1, 3))
        return "train {\n  " + "\n  ".join(chosen) + "\n}"


def _join(layers: list[str], joiners: list[str]) -> str:
    text = ""
    for index, layer in enumerate(layers):
        text += layer if index == 0 else joiners[index] + layer
    return text


def _layout(opening: str, parts: list[str], rng: random.Random) -> str:
    """`kind { a; b }` on one line, or one part per indented line."""
    if rng.random() < 0.5:
        return opening + "; ".join(parts) + " }"
    return opening.rstrip() + "\n" + "".join(f"  {p}\n" for p in parts) + "}"


def _reshape_target(t: TensorType, rng: random.Random) -> str | None:
    if not t.is_static:
        return None
    numel = math.prod(t.dims)
    divisors = [d for d in range(1, numel + 1) if numel % d == 0]
    first = rng.choice(divisors)
    return rng.choice([f"{first}x{numel // first}", str(numel), f"{first}x{numel // first}x1"])


def _by_type(annotation, rng: random.Random) -> str | None:
    options = _flatten(annotation)
    if not options:
        return None
    choice = rng.choice(options)
    if isinstance(choice, tuple):  # a Literal value
        return str(choice[1]).lower() if isinstance(choice[1], bool) else str(choice[1])
    if choice is bool:
        return rng.choice(["true", "false"])
    if choice is int:
        return str(rng.randint(1, 4))
    if choice is float:
        return rng.choice(["0.5", "1.0", "0.01", "2"])
    return None


def _flatten(annotation) -> list:
    """The plain types and ("literal", value) pairs an annotation allows."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _flatten(args[0])
    if origin in (typing.Union, types.UnionType):
        return [item for arg in args if arg is not type(None) for item in _flatten(arg)]
    if origin is typing.Literal:
        return [("literal", value) for value in args]
    if annotation in (bool, int, float):
        return [annotation]
    return []


def generate(rng: random.Random, check) -> Generated:
    """One generated spec. `check(text)` -> output TensorType | None, or raises Trouble."""
    grower = Grower(rng, check)
    try:
        text = grower.spec()
    except Trouble as trouble:
        return Generated(trouble.text, trouble=True, kinds=grower.kinds)
    return Generated(text, kinds=grower.kinds)


"""Passes 2 to 4 over a graph: the top-level lines into steps.

A line's head says what it reads: a tensor name (`a -> ...`), a merge of tensors
(`concat a b axis=0 -> ...`), or neither, when it continues the value of the line above
(a chain's lines all continue, so a chain is one step). `NAME = chain` names the value,
`output` lists the outputs (by default the last line's value). A word that is an
earlier layer's `name=` runs that same layer again (`Node.shares`). Each line's layers
are expanded, checked and named like a chain's, in one scope for the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import ast
from ..errors import Span, did_you_mean
from ..ir import Node, OutputSpec, Step
from ..layers import REGISTRY
from ..layers.base import LayerKind
from .check import check
from .context import Context
from .declarations import Declarations
from .expand import Expander
from .names import Scope, name_nodes
from .report import Report
from .tensors import Tensors, explicit_layer_names
from .uses import Use

DEFAULT_OUTPUT = "output"  # the name of an unnamed last line's value, as a chain's


@dataclass
class _Line:
    """A step being built: what it reads, its nodes so far, its name once it has one."""

    sources: tuple[str, ...]
    span: Span
    nodes: list[Node] = field(default_factory=list)
    name: str | None = None


@dataclass(frozen=True)
class Graph:
    """The model's lines as steps and its outputs, and whether it is a plain chain."""

    steps: tuple[Step, ...]
    outputs: tuple[OutputSpec, ...]
    # One input read by one unnamed run of lines and no `output` line: the model is a chain.
    is_chain: bool

    @property
    def has_layers(self) -> bool:
        return any(step.nodes for step in self.steps)


def build_graph(declared: Declarations, report: Report) -> Graph:
    builder = _Builder(declared, report)
    for line in declared.lines:
        builder.line(line)
    return builder.finish()


def merge_kind(word: str) -> LayerKind | None:
    """The kind a word names if that kind merges branches (`add`, `concat`, ...)."""
    kind = REGISTRY.lookup(word)
    if kind is not None and kind.layout is not None and kind.layout.form == "branches" and kind.layout.merge:
        return kind
    return None


class _Builder:
    def __init__(self, declared: Declarations, report: Report):
        self.inputs, self.report = declared.inputs, report
        self.expander = Expander(declared.blocks, report)
        self.scope = Scope()
        self.layer_names = explicit_layer_names(declared.lines)
        self.tensors = Tensors(declared.lines, declared.blocks, self.layer_names, report)
        for spec in declared.inputs:
            self.tensors.define_input(spec, several=len(declared.inputs) > 1)
        self.layers: dict[str, Node] = {}  # the top-level nodes named so far, for further uses
        self.lines: list[_Line] = []
        self.output_decl: ast.OutputDecl | None = None

    def line(self, statement: ast.Chain | ast.Assignment | ast.OutputDecl) -> None:
        if isinstance(statement, ast.OutputDecl):
            if self.output_decl is not None:
                self.report.error(statement.span, "a second `output` line",
                                  f"list every output on one line (the first is line {self.output_decl.span.line})")
            else:
                self.output_decl = statement
            return
        named = isinstance(statement, ast.Assignment)
        name = statement.name if named else None
        chain = statement.chain if named else statement
        layers = list(chain.layers)
        current = self.head(layers, name, statement.span if named else layers[0].span)
        for layer in layers:
            nodes = self.nodes(layer)
            if current is not None:
                current.nodes.extend(nodes)
        if named:
            self.tensors.define(name, statement.span)
            if current is not None:
                current.name = name

    def head(self, layers: list[ast.Layer], defining: str | None, span: Span) -> _Line | None:
        """The step the line's layers go into (its head, if it reads tensors, taken off
        `layers`); None when the head is a mistake (reported)."""
        first = layers[0]
        if self.tensors.is_tensor(first.word):
            layers.pop(0)
            self.tensors.read.add(first.word)
            if first.args or first.options or first.body is not None:
                self.report.error(first.span, f"`{first.word}` is a tensor: it takes no arguments",
                                  f"read it with `{first.word} -> ...`")
            return self._start((first.word,), span)
        if first.word in self.tensors.assignments and not self.tensors.is_word(first.word):
            layers.pop(0)
            self.tensors.read.add(first.word)
            self.tensors.report_early(first.span, first.word, defining)
            return None
        kind = merge_kind(first.word)
        if kind is not None and first.body is None and first.args and all(isinstance(a, ast.Name) for a in first.args):
            layers.pop(0)
            return self._merge(kind, first, defining, span)
        if not self.tensors.is_word(first.word) and first.word not in self.layer_names \
                and did_you_mean(first.word, self.tensors.defined):
            layers.clear()
            self.tensors.report_undefined(first.span, first.word)
            return None
        return self._continue(span)

    def _merge(self, kind: LayerKind, head: ast.Layer, defining: str | None, span: Span) -> _Line | None:
        """`concat a b axis=0`: a merge node whose bodies are the tensors it names."""
        valid = [self.tensors.check_read(arg, defining) for arg in head.args]
        if len(head.args) < kind.layout.min_bodies:
            self.report.error(head.span, f"`{head.word}` merges at least {kind.layout.min_bodies} tensors, "
                                         f"got {len(head.args)}",
                              f"name each tensor it merges: `{head.word} a b`")
            return None
        use = Use(kind, replace(head, args=()), Context(), (), tuple(arg.span for arg in head.args))
        nodes = name_nodes(check([use], self.report), self.report, self.scope)
        if not all(valid) or not nodes:
            return None
        current = self._start(tuple(arg.name for arg in head.args), span)
        current.nodes.extend(nodes)
        return current

    def _continue(self, span: Span) -> _Line | None:
        """The step a line without a head goes into: the line above's, if it is unnamed."""
        if self.lines and self.lines[-1].name is None:
            return self.lines[-1]
        if self.lines:
            self.tensors.read.add(self.lines[-1].name)
            return self._start((self.lines[-1].name,), span)
        if len(self.inputs) == 1:
            self.tensors.read.add(self.inputs[0].name)
            return self._start((self.inputs[0].name,), span)
        if self.inputs:
            self.report.error(span, "with several inputs, a line must say which tensor it reads",
                              f"begin it with one: `{self.inputs[0].name} -> ...`")
        return None

    def _start(self, sources: tuple[str, ...], span: Span) -> _Line:
        self.lines.append(_Line(sources, span))
        return self.lines[-1]

    def nodes(self, layer: ast.Layer) -> list[Node]:
        """The line's layer as nodes: a further use of a named layer, or expanded, checked and named."""
        if self.tensors.is_tensor(layer.word):
            self.report.error(layer.span, f"`{layer.word}` is a tensor: only a line's first word reads one",
                              f"start a line with it (`{layer.word} -> ...`) or merge it (`add {layer.word} ...`)")
            return []
        original = self.layers.get(layer.word)
        if original is not None and layer.word in self.layer_names and not self.tensors.is_word(layer.word):
            return self._reuse(original, layer)
        nodes = name_nodes(check(self.expander.sequence([layer], Context()), self.report), self.report, self.scope)
        for node in nodes:
            self.layers[node.name] = node
        return nodes

    def _reuse(self, original: Node, layer: ast.Layer) -> list[Node]:
        if layer.args or layer.options or layer.body is not None:
            self.report.error(layer.span, f"`{layer.word}` reuses the layer from line {original.span.line}; "
                                          "it takes no arguments",
                              "to make a layer with weights of its own, write it out with another name=")
            return []
        return [replace(original, name=self.scope.reuse_name(original.name), span=layer.span,
                        shares=original.shares or original.name)]

    def finish(self) -> Graph:
        last = self.lines[-1] if self.lines else None
        for line in self.lines:
            if line.name is None and (line is not last or self.output_decl is not None):
                self.report.error(line.span, "the value of this line is never used",
                                  "name it (`x = ...`) to read it on a later line, or remove it")
        steps = tuple(Step(line.name or self._step_name(line), line.sources, tuple(line.nodes), line.span)
                      for line in self.lines)
        outputs = self._outputs()
        if self.output_decl is None and steps:  # the last line's value
            outputs = (OutputSpec(steps[-1].name, steps[-1].span),)
        self.tensors.report_unused({output.name for output in outputs})
        is_chain = (len(self.inputs) == 1 and len(self.lines) == 1 and self.output_decl is None
                    and self.lines[0].name is None and self.lines[0].sources == (self.inputs[0].name,))
        return Graph(steps, outputs, is_chain)

    def _outputs(self) -> tuple[OutputSpec, ...]:
        if self.output_decl is None:
            return ()
        outputs: list[OutputSpec] = []
        for word in self.output_decl.names:
            if any(output.name == word.name for output in outputs):
                self.report.error(word.span, f"`{word.name}` is listed twice in `output`", "list each output once")
            elif any(spec.name == word.name for spec in self.inputs):
                # an ONNX graph cannot return one of its inputs under the input's own name
                self.report.error(word.span, f"`{word.name}` is an input; an output is a tensor the model makes",
                                  f"output a layer's result, e.g. `{word.name}_out = {word.name} -> identity`")
            elif self.tensors.check_read(word, None):
                outputs.append(OutputSpec(word.name, word.span))
        return tuple(outputs)

    def _step_name(self, line: _Line) -> str:
        """An unnamed line's: `output` for the model's output (as a chain's), else one the
        user cannot write, `_7` for the line at line 7."""
        taken = self.tensors.defined
        if line is self.lines[-1] and self.output_decl is None and DEFAULT_OUTPUT not in taken:
            return DEFAULT_OUTPUT
        name = f"_{line.span.line}"
        return name if name not in taken else f"_{line.span.line}_{line.span.column}"


"""The tensor names of a graph: the inputs' and each `NAME = chain`'s. Which are defined
so far, which are read, and every mistake in their use: a name defined twice or also
meaning a kind, block or layer; a name read before its line (a cycle when its own
definition reads the line); a name that is nothing; a name nothing reads."""

from __future__ import annotations

from .. import ast
from ..errors import Span, did_you_mean
from ..ir import InputSpec
from ..layers import REGISTRY
from .bodies import marker_owners
from .report import Report

UNUSED_HINT = "use it, list it in `output`, or remove it"


def explicit_layer_names(lines) -> dict[str, Span]:
    """The `name=` of every layer written on a top-level line: these are layer names, and a
    later line may use one as a word to run that same layer again."""
    names: dict[str, Span] = {}
    chains = [line.chain if isinstance(line, ast.Assignment) else line for line in lines
              if isinstance(line, (ast.Chain, ast.Assignment))]
    for chain in chains:
        for layer in chain.layers:
            for option in layer.options:
                if option.key == "name" and isinstance(option.value, (ast.Name, ast.String)):
                    names.setdefault(str(ast.plain(option.value)), option.value.span)
    return names


class Tensors:
    def __init__(self, lines, blocks: dict[str, ast.BlockDef], layer_names: dict[str, Span], report: Report):
        self.blocks, self.layer_names, self.report = blocks, layer_names, report
        self.defined: dict[str, Span] = {}
        self.read: set[str] = set()
        self.markers = marker_owners()
        # Every NAME = on the file's lines (the first definition of each), and the tensors
        # its head reads: for "used before its line" and the cycle it may close.
        self.assignments: dict[str, ast.Assignment] = {}
        for line in lines:
            if isinstance(line, ast.Assignment):
                self.assignments.setdefault(line.name, line)

    def is_tensor(self, word: str) -> bool:
        """A defined tensor, and no kind or block: those words keep their meaning."""
        return word in self.defined and not self.is_word(word)

    def is_word(self, word: str) -> bool:
        """A word that already means a layer: a kind, a block, `repeat` or a body marker."""
        return REGISTRY.lookup(word) is not None or word in self.blocks or word == "repeat" or word in self.markers

    def define_input(self, spec: InputSpec, several: bool) -> None:
        if several:  # a single input keeps any name it had before graphs
            self._check_new_name(spec.name, spec.span, "input")
        self.defined[spec.name] = spec.span

    def define(self, name: str, span: Span) -> None:
        """A NAME = line's name; defined even when it is a mistake, so reading it adds none."""
        if name in self.defined:
            self.report.error(span, f"tensor `{name}` is defined twice",
                              f"the first definition is at line {self.defined[name].line}; give this one another name")
            return
        self._check_new_name(name, span, "tensor")
        self.defined[name] = span

    def _check_new_name(self, name: str, span: Span, what: str) -> None:
        if REGISTRY.lookup(name) is not None or name == "repeat" or name in self.markers:
            self.report.error(span, f"{what} name `{name}` is also a layer kind", "choose another name")
        elif name in self.blocks:
            self.report.error(span, f"{what} name `{name}` is also a block", "choose another name")
        elif name in self.layer_names:
            self.report.error(span, f"{what} name `{name}` is also a layer's name (line {self.layer_names[name].line})",
                              "give the tensor or the layer another name")

    def check_read(self, word: ast.Name, defining: str | None) -> bool:
        """Reading `word` as a tensor (an argument of a merge, a name in `output`): True if
        it is one; otherwise the mistake is reported."""
        self.read.add(word.name)
        if word.name in self.defined:
            return not self.is_word(word.name)  # a name that is also a kind is reported where it is defined
        if word.name in self.assignments:
            self.report_early(word.span, word.name, defining)
        elif word.name in self.layer_names:
            self.report.error(word.span, f"`{word.name}` names a layer, not a tensor",
                              "name a line's value to read it: `x = ... -> " + word.name + "`")
        else:
            self.report_undefined(word.span, word.name)
        return False

    def report_undefined(self, span: Span, word: str) -> None:
        self.report.error(span, f"undefined tensor `{word}`",
                          did_you_mean(word, self.defined) or f"define it on an earlier line: `{word} = ...`")

    def report_early(self, span: Span, word: str, defining: str | None) -> None:
        """`word` is defined, but on a later line; a cycle if that line reads `defining`."""
        line = self.assignments[word].span.line
        cycle = self._path(word, defining, set()) if defining else None
        if cycle:
            self.report.error(span, f"`{word}` is used before its line (line {line}); cycle: "
                                    f"{' -> '.join((defining, *cycle))}",
                              "a tensor cannot read itself, even through other tensors")
        else:
            self.report.error(span, f"`{word}` is used before its line (line {line})",
                              f"a line reads only tensors defined above it: move this line below line {line}")

    def _path(self, start: str, goal: str, seen: set[str]) -> list[str] | None:
        """The tensors from `start` to `goal` along what each definition's head reads."""
        if start == goal:
            return [goal]
        if start in seen or start not in self.assignments:
            return None
        seen.add(start)
        for read in _head_reads(self.assignments[start]):
            rest = self._path(read, goal, seen)
            if rest:
                return [start, *rest]
        return None

    def report_unused(self, outputs: set[str]) -> None:
        """Tensors nothing reads. Only in an otherwise correct file: after another mistake
        (a misspelt name, a line left out) they are more often its echo than a mistake."""
        if self.report:
            return
        for name, span in self.defined.items():
            if name not in self.read and name not in outputs:
                self.report.error(span, f"`{name}` is never used", UNUSED_HINT)


def _head_reads(assignment: ast.Assignment) -> tuple[str, ...]:
    """The tensor names at the head of a named chain: `b` in `a = b -> ...`, `b c` in `a = add b c`."""
    head = assignment.chain.layers[0]
    names = tuple(arg.name for arg in head.args if isinstance(arg, ast.Name))
    return names if names and head.body is None else (head.word,)

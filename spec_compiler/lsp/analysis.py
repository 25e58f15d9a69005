"""One document's check, run as `specc compile` runs it (parse, elaborate, infer), keeping
what each stage produced: a file whose shapes do not check still has an AST for symbols,
definitions and completion. Checks are cached by text, so an unchanged document is never
checked twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from .. import ast
from ..elaborate import elaborate
from ..errors import Diagnostic, Span, SpecError
from ..inference import LayerInfo, Limits, ModelInfo, infer
from ..parser import parse
from ..shapes import TensorType
from .incremental import IncrementalParser
from .symbols import SymbolIndex, index_symbols
from .textscan import Braces


@dataclass(frozen=True)
class Analysis:
    path: str
    source: str
    spec: ast.SpecFile | None  # None when the text does not parse
    info: ModelInfo | None  # None unless every check passed
    diagnostics: tuple[Diagnostic, ...] = ()
    not_shown: int = 0  # errors past the reporting limit, as the CLI counts them
    warnings: tuple[Diagnostic, ...] = ()  # valid values that are probably mistakes, as the CLI prints them

    @cached_property
    def braces(self) -> Braces:
        return Braces.of(self.source)

    @cached_property
    def symbols(self) -> SymbolIndex:
        return index_symbols(self.spec) if self.spec is not None else SymbolIndex([])

    @cached_property
    def inferred(self) -> tuple[tuple[LayerInfo, str], ...]:
        """Every inferred layer (nested ones too) in the order inference met them, with
        the path of the sequence holding it."""
        found: list[tuple[LayerInfo, str]] = []

        def walk(layers: tuple[LayerInfo, ...], parent: str) -> None:
            for layer in layers:
                found.append((layer, parent))
                for body in layer.children:
                    walk(body, layer.path)

        if self.info is not None:
            walk(self.info.layers, "")
        return tuple(found)

    @cached_property
    def tensor_types(self) -> dict[str, TensorType]:
        """Each tensor's type, by name: the inputs' and each step's (empty unless every check passed)."""
        if self.info is None:
            return {}
        return self.info.inputs | {step.step.name: step.output for step in self.info.steps}

    @cached_property
    def infos_by_span(self) -> dict[Span, list[LayerInfo]]:
        """Inferred layers by the span of their word: a span written once may be inferred
        many times (a block's layers, once per use; a repeat's, once per copy)."""
        found: dict[Span, list[LayerInfo]] = {}
        for layer, _ in self.inferred:
            found.setdefault(layer.node.span, []).append(layer)
        return found


def analyze(source: str, path: str, limits: Limits,
            parse_source: Callable[[str, str], ast.SpecFile] = parse) -> Analysis:
    try:
        spec = parse_source(source, path)
    except SpecError as error:
        return Analysis(path, source, None, None, tuple(error.diagnostics), error.not_shown)
    except RecursionError:
        return Analysis(path, source, None, None, (_too_deep(),))
    try:
        ir = elaborate(spec)
        try:
            info = infer(ir, limits)
        except SpecError as error:
            raise error.with_warnings(ir.warnings) from None
        return Analysis(path, source, spec, info, warnings=ir.warnings)
    except SpecError as error:
        return Analysis(path, source, spec, None, tuple(error.diagnostics), error.not_shown, tuple(error.warnings))
    except RecursionError:
        return Analysis(path, source, spec, None, (_too_deep(),))


def _too_deep() -> Diagnostic:
    # the same last resort as spec_compiler.model.compile_source
    return Diagnostic("the spec is nested too deeply to check", None,
                      "use fewer levels of bodies and blocks inside one another")


@dataclass
class Checker:
    """The latest analysis of each open document, redone only when its text changes."""

    limits: Limits = field(default_factory=Limits)
    checks: int = 0  # analyses run, for the speed tests and the benchmark
    _latest: dict[str, Analysis] = field(default_factory=dict)
    _parsed: dict[str, ast.SpecFile] = field(default_factory=dict)
    _parsers: dict[str, IncrementalParser] = field(default_factory=dict)

    def check(self, uri: str, path: str, source: str) -> tuple[Analysis, bool]:
        """The document's analysis, and whether it is new (the text changed)."""
        cached = self._latest.get(uri)
        if cached is not None and cached.source == source and cached.path == path:
            return cached, False
        parser = self._parsers.setdefault(uri, IncrementalParser())
        analysis = analyze(source, path, self.limits, parser.parse)
        self.checks += 1
        self._latest[uri] = analysis
        if analysis.spec is not None:
            self._parsed[uri] = analysis.spec
        return analysis, True

    def latest(self, uri: str) -> Analysis | None:
        return self._latest.get(uri)

    def last_parsed(self, uri: str) -> ast.SpecFile | None:
        """The newest AST of the document: of its current text, or of the last text that
        parsed (completion still offers block names while a line is half typed)."""
        return self._parsed.get(uri)

    def forget(self, uri: str) -> None:
        self._latest.pop(uri, None)
        self._parsed.pop(uri, None)
        self._parsers.pop(uri, None)

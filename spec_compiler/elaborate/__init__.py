"""Elaboration: AST to IR, in four passes, each a module.

1. `declarations`: the model name, the inputs, block definitions, the train section.
2. `expand`: layer words resolved; `repeat` and block uses expanded; structural
   bodies split as their kind's layout says (`bodies`).
3. `check`: arguments read into each kind's schema (`arguments`) and validated;
   pydantic's errors become diagnostics (`pydantic_errors`).
4. `names`: every node named; the IR's node tree.

`graph` runs passes 2 to 4 line by line, turning the top-level lines into steps (what
each reads, its nodes, the tensor it names) and checking tensor names (`tensors`).

Every pass reports into one `Report`, so all mistakes in the file come out together;
the warnings it collects (valid values that are probably mistakes) go into the IR.
"""

from __future__ import annotations

import re

from .. import ast
from ..ir import ModelIR, chain
from .declarations import declare
from .graph import build_graph
from .report import Report


def elaborate(spec: ast.SpecFile, max_errors: int = 20) -> ModelIR:
    report = Report()
    declared = declare(spec, report)
    graph = build_graph(declared, report)
    if not graph.has_layers and declared.input_span is not None and not report:
        report.error(declared.input_span, "the model has no layers", "add layers after the `input` line")
    report.raise_if_any(spec.source, max_errors)
    name = declared.model_name or _stem(spec.path)
    rest = dict(train_section=declared.train, path=spec.path, source=spec.source, warnings=report.warnings)
    if graph.is_chain:
        return chain(name, declared.inputs[0], graph.steps[0].nodes, **rest)
    return ModelIR(name, declared.inputs, graph.steps, graph.outputs, **rest)


def _stem(path: str) -> str:
    stem = re.sub(r"\.spec$", "", path.replace("\\", "/").rsplit("/", 1)[-1])
    return re.sub(r"\W", "_", stem) or "model"

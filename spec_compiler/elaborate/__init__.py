"""Elaboration: AST to IR, in four passes, each a module.

1. `declarations`: the model name, the input, block definitions, the train section.
2. `expand`: layer words resolved; `repeat` and block uses expanded; structural
   bodies split as their kind's layout says (`bodies`).
3. `check`: arguments read into each kind's schema (`arguments`) and validated;
   pydantic's errors become diagnostics (`pydantic_errors`).
4. `names`: every node named; the IR's node tree.

Every pass reports into one `Report`, so all mistakes in the file come out together;
the warnings it collects (valid values that are probably mistakes) go into the IR.
"""

from __future__ import annotations

import re

from .. import ast
from ..ir import ModelIR, chain
from .check import check
from .declarations import declare
from .expand import expand
from .names import name_nodes
from .report import Report


def elaborate(spec: ast.SpecFile, max_errors: int = 20) -> ModelIR:
    report = Report()
    declared = declare(spec, report)
    nodes = name_nodes(check(expand(declared.layers, declared.blocks, report), report), report)
    if not nodes and declared.input_span is not None and not report:
        report.error(declared.input_span, "the model has no layers", "add layers after the `input` line")
    report.raise_if_any(spec.source, max_errors)
    assert declared.input is not None  # else an error was reported
    return chain(declared.model_name or _stem(spec.path), declared.input, tuple(nodes),
                 train_section=declared.train, path=spec.path, source=spec.source, warnings=report.warnings)


def _stem(path: str) -> str:
    stem = re.sub(r"\.spec$", "", path.replace("\\", "/").rsplit("/", 1)[-1])
    return re.sub(r"\W", "_", stem) or "model"

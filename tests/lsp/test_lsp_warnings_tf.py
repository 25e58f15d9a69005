"""The language server shows a spec's warnings (severity Warning) where `specc compile`
prints them: beside a valid model's hints, and before the errors of one that fails."""

from __future__ import annotations

from lsprotocol import types

from spec_compiler.inference import Limits
from spec_compiler.lsp.analysis import analyze
from spec_compiler.lsp.positions import Positions
from spec_compiler.lsp.server import lsp_diagnostics


def published(source: str) -> list[types.Diagnostic]:
    analysis = analyze(source, "t.spec", Limits())
    return list(lsp_diagnostics(analysis, Positions(source)).values())


def test_a_valid_spec_publishes_its_warnings():
    (warning,) = published("input image 224x224x3\nconv 8 3x3 -> batchnorm momentum=0.1\nflatten\ndense 2\n")[1:]
    first = published("input image 224x224x3\nflatten\n")[0]
    assert first.severity == types.DiagnosticSeverity.Warning
    assert first.message.startswith("`input image 224x224x3` reads as 224 channels")
    assert first.range.start == types.Position(line=0, character=12)
    assert warning.severity == types.DiagnosticSeverity.Warning and "momentum=0.1" in warning.message
    assert published("input image 3x224x224\nflatten\n") == []


def test_warnings_come_with_the_errors_of_a_failing_spec():
    shown = published("input image 224x224x3\nconv 64 3x3 -> maxpool 2\nflatten\n")
    assert [d.severity for d in shown] == [types.DiagnosticSeverity.Warning, types.DiagnosticSeverity.Error]
    shown = published("input image 224x224x3\ndense 0\n")  # an elaboration error
    assert [d.severity for d in shown] == [types.DiagnosticSeverity.Warning, types.DiagnosticSeverity.Error]

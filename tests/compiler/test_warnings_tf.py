"""The warnings of issue 10: a channels-last image input and a batchnorm momentum that
looks like PyTorch's. Their exact text (golden files in tests/golden/warnings/), where they
appear (stderr, --json, the Python API, before errors) and where they must not.
`specc export --json`: tests/lowering/test_masks_tf.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import ROOT, check_golden

import spec_compiler
from spec_compiler import SpecError, compile_source
from spec_compiler.cli import main

WARNINGS = ROOT / "tests" / "golden" / "warnings"

WARNING_CASES = {
    # name: (line, column) of each warning
    "channels_last_image": [(2, 13)],
    "pytorch_momentum": [(3, 34)],
    "momentum_through_a_block": [(6, 10)],
    "warning_then_error": [(2, 13)],
}


@pytest.mark.parametrize("name", sorted(WARNING_CASES))
def test_warning_golden(name, overwrite):
    path = WARNINGS / f"{name}.spec"
    relative = path.relative_to(ROOT).as_posix()
    try:
        model = compile_source(path.read_text(encoding="utf-8"), relative)
        warnings, rendered = model.warnings, model.warning_text()
    except SpecError as error:
        assert name == "warning_then_error"
        warnings, rendered = error.warnings, error.render()
        assert rendered.index("warning:") < rendered.index("error:")  # the likely cause first
    assert [(w.span.line, w.span.column) for w in warnings] == WARNING_CASES[name]
    assert all(w.severity == "warning" and f"{relative}:{w.span.line}:{w.span.column}: warning: " in rendered
               for w in warnings)
    check_golden(WARNINGS / f"{name}.out", rendered, overwrite)


def test_every_warning_file_has_a_case():
    assert {p.stem for p in WARNINGS.glob("*.spec")} == set(WARNING_CASES)


@pytest.mark.parametrize("source", [
    "input image 3x224x224\nflatten", "input image 1x28x28\nflatten", "input image 4x8x8\nflatten",
    "input image 64x8x8\nflatten", "input image 1x4x4\nflatten",
    "input vector 8\nbatchnorm momentum=0.9", "input vector 8\nbatchnorm momentum=0.5", "input vector 8\nbatchnorm",
])
def test_no_warning_where_nothing_looks_wrong(source):
    assert compile_source(source, "t.spec").warnings == ()


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_prints_warnings_on_stderr_and_exits_0():
    spec = str(WARNINGS / "channels_last_image.spec")
    result = _cli("compile", spec)
    assert result.exit_code == 0
    assert "warning: `input image 224x224x3` reads as 224 channels" in result.stderr
    assert "warning" not in result.stdout and "Total params" in result.stdout
    data = json.loads(_cli("compile", spec, "--json").stdout)
    assert data["warnings"] == [{
        "message": "`input image 224x224x3` reads as 224 channels of 224x3 pixels: images are channels-first, CxHxW",
        "line": 2, "column": 13, "hint": "for a 224x224 image with 3 channels write `input image 3x224x224`"}]
    assert spec_compiler.load(ROOT / "specs/lenet5.spec").summary()["warnings"] == []


def test_the_warnings_shown_in_the_docs_are_the_real_output(tmp_path):
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    shown = text.split("$ specc compile bad.spec\n", 1)[1].split("```", 1)[0]
    spec = "input image 224x224x3\nconv 64 3x3 -> batchnorm momentum=0.1\nflatten\ndense 2\n"
    assert compile_source(spec, "bad.spec").warning_text() + "\n" == shown

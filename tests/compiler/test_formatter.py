"""`specc fmt`: canonical layout, idempotent, meaning and comments preserved."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from spec_compiler.formatter import format_source
from spec_compiler.parser import parse

SPECS = sorted(Path(__file__).resolve().parents[2].joinpath("specs").glob("*.spec"))

MESSY = """\
# a messy file
model   tiny
input image 3x32x32   # rgb


block basic(c,s=1){
  conv c 3x3 stride=s pad=same bias=false->batchnorm
   -> relu
  # second conv
  conv c 3x3 pad=same init=normal(0, 0.05)
}
residual { conv 16 3x3 pad=same
 shortcut { conv 16 1x1 } }
concat { branch { conv 8 1x1 }; branch { maxpool 3 stride=1 pad=same } }
train {
  loss=sparse_categorical_crossentropy optimizer=adam(lr=1e-3, betas=[0.9, 0.99])
}
"""

EXPECTED = """\
# a messy file
model tiny
input image 3x32x32  # rgb

block basic(c, s=1) {
  conv c 3x3 stride=s pad=same bias=false -> batchnorm -> relu
  # second conv
  conv c 3x3 pad=same init=normal(0, 0.05)
}
residual {
  conv 16 3x3 pad=same
  shortcut { conv 16 1x1 }
}
concat {
  branch { conv 8 1x1 }
  branch { maxpool 3 stride=1 pad=same }
}
train {
  loss=sparse_categorical_crossentropy
  optimizer=adam(lr=1e-3, betas=[0.9, 0.99])
}
"""


def _strip_spans(node):
    """The AST without source positions, to compare meaning."""
    if isinstance(node, tuple):
        return tuple(_strip_spans(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__,) + tuple(
            _strip_spans(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name != "span"
        )
    return node


def test_messy_file_gets_the_canonical_layout():
    assert format_source(MESSY) == EXPECTED


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_format_is_idempotent_and_keeps_meaning(path):
    source = path.read_text()
    once = format_source(source)
    assert format_source(once) == once
    assert _strip_spans(parse(once).statements) == _strip_spans(parse(source).statements)
    comments = [line.split("#", 1)[1].strip() for line in source.splitlines() if "#" in line]
    for comment in comments:
        assert comment in once


def test_fmt_check_reports_unformatted_files(tmp_path):
    messy = tmp_path / "messy.spec"
    messy.write_text(MESSY)
    tidy = tmp_path / "tidy.spec"
    tidy.write_text(EXPECTED)
    run = [sys.executable, "-m", "spec_compiler.cli", "fmt", "--check"]
    assert subprocess.run(run + [str(tidy)], capture_output=True).returncode == 0
    result = subprocess.run(run + [str(messy)], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"would reformat {messy}" in result.stderr


def test_fmt_write_rewrites_in_place(tmp_path):
    messy = tmp_path / "messy.spec"
    messy.write_text(MESSY)
    subprocess.run([sys.executable, "-m", "spec_compiler.cli", "fmt", "--write", str(messy)], check=True)
    assert messy.read_text() == EXPECTED
    assert [p.name for p in tmp_path.iterdir()] == ["messy.spec"]  # no temporary file left


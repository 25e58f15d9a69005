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



# --- comments in every place (issue 9: fmt dropped some) -------------------------------

COMMENT_CASES = {
    "after a closing brace": (
        "input vector 4\nresidual {\n  dense 4\n  dense 4\n}  # after brace\ndense 2\n",
        "input vector 4\nresidual {\n  dense 4\n  dense 4\n}  # after brace\ndense 2\n"),
    "after an inline body": (
        "input vector 4\nresidual {\n  dense 4\n}  # after brace\n",
        "input vector 4\nresidual { dense 4 }  # after brace\n"),
    "on continuation lines of a chain": (
        "input vector 4\ndense 4 ->  # on the arrow\n  relu  # second line\ndense 2\n",
        "input vector 4\ndense 4 -> relu  # on the arrow  # second line\ndense 2\n"),
    "on a backslash continuation": (
        "input vector 4\ndense 4 \\\n  name=a  # continued\n",
        "input vector 4\ndense 4 name=a  # continued\n"),
    "in and after the train section": (
        "input vector 4\ndense 4\ntrain {\n  epochs=2  # two\n  # whole line\n  lr=0.1\n}  # end\n# after\n",
        "input vector 4\ndense 4\ntrain {\n  epochs=2  # two\n  # whole line\n  lr=0.1\n}  # end\n# after\n"),
    "in an empty body": (
        "input vector 4\nresidual {\n  # nothing yet\n}\n",
        "input vector 4\nresidual {\n  # nothing yet\n}\n"),
    "before a closing brace, then an arrow": (
        "input vector 4\nresidual {\n  dense 4\n  # last\n}\n-> relu\n",
        "input vector 4\nresidual {\n  dense 4\n  # last\n} -> relu\n"),
    "on the lines of a block": (
        "input vector 4\nblock b(p) {  # b\n  dense p  # d\n}  # e\nb 3\n",
        "input vector 4\nblock b(p) {  # b\n  dense p  # d\n}  # e\nb 3\n"),
    "between branches": (
        "input vector 4\nconcat { branch { dense 2 }  # one\n  branch { dense 3 } }  # two\n",
        "input vector 4\nconcat {\n  branch { dense 2 }  # one\n  branch { dense 3 }\n}  # two\n"),
    "after a semicolon": (
        "input vector 4\ndense 4; # semi\nrelu\n",
        "input vector 4\ndense 4  # semi\nrelu\n"),
    "with blank lines around": (
        "# head\n\nmodel x  # m\ninput vector 4\n\n# mid\n\ndense 4\n\n# tail\n",
        "# head\n\nmodel x  # m\ninput vector 4\n\n# mid\n\ndense 4\n\n# tail\n"),
    "quoted hashes are not comments": (
        'input vector 4\ndense 2 name="a"  # c "#"\n',
        'input vector 4\ndense 2 name="a"  # c "#"\n'),
}


@pytest.mark.parametrize("case", sorted(COMMENT_CASES))
def test_every_comment_is_kept_in_place(case):
    source, expected = COMMENT_CASES[case]
    formatted = format_source(source)
    assert formatted == expected
    assert format_source(formatted) == formatted
    assert _strip_spans(parse(formatted).statements) == _strip_spans(parse(source).statements)


def test_fmt_reads_crlf_and_bom_like_lf():
    assert format_source("\ufeff" + MESSY.replace("\n", "\r\n")) == EXPECTED
    assert format_source(MESSY.replace("\n", "\r")) == EXPECTED


GRAPH = """\
model siamese
input image 1x28x28 name=left  # two inputs
input image 1x28x28 name=right

block tower() { conv 16 3x3 relu -> maxpool 2 -> flatten -> dense 32 }

# the same tower twice
a = left -> tower name=enc
b = right -> enc
d = add a b -> dense 1 sigmoid
e = concat a b axis=0
output d e  # both
"""


def test_a_canonical_graph_prints_back_unchanged():
    canonical = GRAPH.replace("block tower() { conv 16 3x3 relu -> maxpool 2 -> flatten -> dense 32 }",
                              "block tower() {\n  conv 16 3x3 relu -> maxpool 2 -> flatten -> dense 32\n}")
    assert format_source(canonical) == canonical


def test_a_messy_graph_gets_the_canonical_layout_and_keeps_its_meaning():
    messy = GRAPH.replace("a = left -> tower", "a   =left->\n  tower").replace("output d e", "output  d\\\n e")
    once = format_source(messy)
    assert "a = left -> tower name=enc\n" in once
    assert "output d e  # both\n" in once
    assert format_source(once) == once
    assert _strip_spans(parse(once).statements) == _strip_spans(parse(messy).statements)

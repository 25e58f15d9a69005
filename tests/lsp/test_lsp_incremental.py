"""Statement-by-statement parsing gives exactly the AST (and the errors) of a whole parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec_compiler.errors import SpecError
from spec_compiler.lsp.incremental import IncrementalParser, statement_chunks
from spec_compiler.parser import parse

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.spec"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_same_ast_as_a_whole_parse_through_edits(path):
    text = path.read_text()
    parser = IncrementalParser()
    assert parser.parse(text, str(path)) == parse(text, str(path))
    lines = text.split("\n")
    edits = [
        "\n".join(lines[:3] + ["", "# a new comment", "relu"] + lines[3:]),  # every later statement moves down
        "\n".join(lines[:2] + lines[3:]),  # one moves up
        text.replace("relu", "gelu", 1),
        text,
    ]
    for edited in edits:
        try:
            expected = parse(edited, str(path))
        except SpecError:
            continue
        assert parser.parse(edited, str(path)) == expected


def test_statements_split_only_where_a_new_one_starts():
    text = "model m  # name\n\ninput image 1x8x8\nconv 4 3x3 ->\n  relu\n-> flatten\nresidual {\n  dense 2\n}\ndense \\\n  3\n"
    assert [first for first, _ in statement_chunks(text)] == [1, 3, 4, 7, 10]
    assert "".join(chunk + "\n" for _, chunk in statement_chunks(text)) == text + "\n"


def test_a_syntax_error_is_reported_as_the_whole_parse_reports_it():
    text = "input image 1x8x8\nconv 4 3x3 -> -> relu\nresidual {\n  dense 2\n"
    parser = IncrementalParser()
    with pytest.raises(SpecError) as whole:
        parse(text, "t.spec")
    with pytest.raises(SpecError) as incremental:
        parser.parse(text, "t.spec")
    assert incremental.value.diagnostics == whole.value.diagnostics

"""The language server's features in process: the parts the stdio tests do not reach."""

from __future__ import annotations

from lsprotocol import types

from spec_compiler.errors import did_you_mean, suggestion
from spec_compiler.inference import Limits
from spec_compiler.lsp.analysis import Checker, analyze
from spec_compiler.lsp.completion import complete
from spec_compiler.lsp.facts import line_hints
from spec_compiler.lsp.fixes import code_actions
from spec_compiler.lsp.hover import hover
from spec_compiler.lsp.outline import document_symbols
from spec_compiler.lsp.positions import Positions
from spec_compiler.lsp.server import lsp_diagnostics
from spec_compiler.lsp.symbols import LAYER_NAME, PARAMETER, TENSOR, Symbol

BLOCKS = """input image 3x32x32
block unit(c, s=1) {
  conv c 3x3 stride=s pad=same -> relu
}
unit 16 -> unit 16
unit 32 s=2
repeat 2 { conv 32 1x1 -> relu }
"""


def check(text: str):
    return analyze(text, "t.spec", Limits()), Positions(text)


def labels(text: str, line: int, character: int) -> list[str]:
    analysis, positions = check(text)
    items = complete(analysis.braces, analysis.spec, positions, types.Position(line=line, character=character))
    return [item.label for item in items]


def test_suggestion_reads_what_did_you_mean_writes():
    assert suggestion(did_you_mean("avgpol", ["avgpool", "maxpool"])) == "avgpool"
    assert suggestion("add `flatten` before it") is None
    assert suggestion(None) is None


def test_an_unchanged_text_is_checked_once():
    checker = Checker()
    first, new = checker.check("file:///a.spec", "a.spec", BLOCKS)
    again, new_again = checker.check("file:///a.spec", "a.spec", BLOCKS)
    assert (new, new_again, again is first, checker.checks) == (True, False, True, 1)
    checker.check("file:///a.spec", "a.spec", BLOCKS + "relu\n")
    assert checker.checks == 2


def test_a_text_that_stops_parsing_keeps_its_last_ast_for_completion():
    checker = Checker()
    checker.check("file:///a.spec", "a.spec", BLOCKS)
    broken, _ = checker.check("file:///a.spec", "a.spec", BLOCKS + "conv 3 ->\n")
    assert broken.spec is None and broken.diagnostics
    assert [b.name for b in checker.last_parsed("file:///a.spec").statements if hasattr(b, "params")] == ["unit"]


def test_hints_only_where_every_use_of_a_line_agrees():
    analysis, _ = check(BLOCKS)
    hints = line_hints(analysis)
    assert 3 not in hints  # the block's line: 16x32x32 in two uses, 32x16x16 in the third
    assert hints[5] == "→ 16x32x32 · 2,768 params"  # two uses of unit 16 (448 + 2,320 params)
    assert hints[6] == "→ 32x16x16 · 4,640 params"
    assert hints[7] == "→ 32x16x16 · 1,056 params"  # one copy of the repeat's line (both copies agree)


def test_hover_on_a_block_use_an_option_and_an_activation():
    analysis, positions = check(BLOCKS)

    def text(line, character):
        return hover(analysis, positions, types.Position(line=line, character=character)).contents.value

    assert text(5, 1).startswith("block **unit**(c, s), defined at line 2")
    assert "`32x16x16` · 4,640 params" in text(5, 1)
    assert text(2, 14).startswith("`conv` option `stride`: int > 0 | sizes like 3x3; default 1")
    assert "output `32x16x16` · 1,056 params · 262,144 FLOPs (each of its 2 instances)" in text(6, 13)
    dense = check("input vector 8\ndense 4 relu\n")
    assert hover(*dense, types.Position(line=1, character=9)).contents.value == "activation **relu**: max(0, x)"


def test_completion_contexts():
    assert labels("input \n", 0, 6) == ["image", "vector", "sequence", "tokens"]
    assert labels("input image 1x8x8\ntrain {\n  loss=\n}\n", 2, 7)[:2] == ["binary_crossentropy",
                                                                             "categorical_crossentropy"]
    in_train = labels("input image 1x8x8\ntrain {\n  epochs=3 \n}\n", 2, 11)
    assert "lr" in in_train and "epochs" not in in_train
    assert "branch" in labels("input image 1x8x8\nconcat {\n  \n}\n", 2, 2)
    assert "model" in labels("\n", 0, 0) and "model" not in labels("input image 1x8x8\nconcat {\n  \n}\n", 2, 2)
    in_block = labels(BLOCKS, 2, 7)  # `conv c` inside block unit: its parameters are values
    assert {"c", "s", "stride"} <= set(in_block)
    assert labels(BLOCKS, 5, 8) == ["c", "s"]  # `unit 32 ` offers the block's parameters as options
    assert labels("input image 1x8x8\nconv 3 3x3 # \n", 1, 13) == []  # in a comment


def test_symbols_for_parameters_layer_names_and_the_input():
    analysis, _ = check('input image 1x8x8 name=pixels\nblock b(c) { conv c 1x1 name=inner }\nb c=4 name=outer\n')
    index = analysis.symbols
    assert index.at(3, 3).symbol == Symbol(PARAMETER, "c", "b")  # `c=4` at the use names the parameter
    assert [s.line for s in index.references(Symbol(PARAMETER, "c", "b"))] == [2, 2, 3]
    assert index.at(1, 25).symbol == Symbol(TENSOR, "pixels")
    assert index.names(LAYER_NAME) == ["outer"]
    assert index.definition(index.at(3, 14).symbol).column == 12


def test_positions_count_utf16_units_beyond_the_basic_plane():
    positions = Positions('x = "a😀b"')
    assert positions.position(1, 8).character == 8  # the 😀 is two UTF-16 units
    assert positions.locate(types.Position(line=0, character=8)) == (1, 8)


def test_a_fix_that_does_not_remove_the_error_is_not_offered():
    text = "input tokens 10 vocab=100\nlstm 8\n"  # `add embedding N`: N is not known, so no fix
    analysis, positions = check(text)
    assert analysis.diagnostics
    everywhere = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=9, character=0))
    assert code_actions(analysis, positions, lsp_diagnostics(analysis, positions), everywhere, "file:///t.spec",
                        Limits()) == []


def test_a_fix_inside_a_chain_and_a_one_line_residual():
    everywhere = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=9, character=0))
    for text, expected in [
        ("input image 1x8x8\nconv 4 3x3 -> dense 2\n", "conv 4 3x3 -> flatten -> dense 2"),
        ("input vector 8\nresidual { dense 4 relu }\n", "residual { dense 4 relu; shortcut { dense 4 } }"),
    ]:
        analysis, positions = check(text)
        (action,) = code_actions(analysis, positions, lsp_diagnostics(analysis, positions), everywhere,
                                 "file:///t.spec", Limits())
        (edit,) = action.edit.changes["file:///t.spec"]
        start, end = (positions.offset(*positions.locate(p)) for p in (edit.range.start, edit.range.end))
        fixed = text[:start] + edit.new_text + text[end:]
        assert expected in fixed and not check(fixed)[0].diagnostics


GRAPH = """input vector 8 name=left
input vector 8 name=right
a = left -> dense 4 name=enc
b = right -> enc
add a b -> dense 2
"""


def test_tensors_and_a_layer_used_again_are_symbols_with_definitions():
    index = check(GRAPH)[0].symbols
    assert index.at(5, 5).symbol == Symbol(TENSOR, "a")  # `add a b` reads a
    assert [s.line for s in index.references(Symbol(TENSOR, "a"))] == [3, 5]
    assert index.definition(Symbol(TENSOR, "left")).line == 1 and index.at(3, 5).symbol == Symbol(TENSOR, "left")
    assert index.at(4, 14).symbol == Symbol(LAYER_NAME, "enc")  # `b = right -> enc`: the same layer again
    assert index.definition(Symbol(LAYER_NAME, "enc")).line == 3


def test_hover_on_a_tensor_says_its_shape_and_where_it_is_defined():
    analysis, positions = check(GRAPH)
    text = hover(analysis, positions, types.Position(line=4, character=6)).contents.value
    assert text == "tensor **b**: `4`, defined at line 4"


def test_a_graph_with_a_mistake_has_positioned_diagnostics_and_an_outline():
    analysis, positions = check(GRAPH.replace("add a b", "add a c"))
    (diagnostic,) = analysis.diagnostics
    assert (diagnostic.message, diagnostic.span.line, diagnostic.span.column) == ("undefined tensor `c`", 5, 7)
    names = [symbol.name for symbol in document_symbols(analysis, positions)]
    assert names == ["input", "input", "a", "b", "add a c", "dense 2"]


def test_completion_offers_tensors_where_a_line_reads_one():
    text = GRAPH + "c = \noutput \nconcat \n"  # being typed: the names come from the last text that parsed
    parsed, positions = check(GRAPH)[0].spec, Positions(text)

    def offered(line, character):
        items = complete(check(text)[0].braces, parsed, positions, types.Position(line=line, character=character))
        return [item.label for item in items]

    after_name = offered(5, 4)
    assert {"left", "right", "a", "b", "dense"} <= set(after_name) and "output" not in after_name
    assert offered(6, 7) == ["left", "right", "a", "b"]
    assert {"a", "b", "axis"} <= set(offered(7, 7))
    assert {"output", "input", "dense"} <= set(labels("input vector 3\ndense 2\n\n", 2, 0))

"""Integer expressions in values (docs/language.md#expressions): how they are read, what
they compute when a block is used, how `specc fmt` prints them, and the errors of the
mistakes (positioned, with the values that led to them)."""

from __future__ import annotations

import pytest

from spec_compiler import SpecError, compile_source
from spec_compiler.formatter import format_source
from spec_compiler.parser import parse


def _leaves(nodes):
    for node in nodes:
        if node.bodies:
            for body in node.bodies:
                yield from _leaves(body)
        else:
            yield node


def _compiled(source: str):
    return list(_leaves(compile_source(source, "expr.spec").ir.nodes))


def _error(source: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        compile_source(source, "expr.spec")
    return caught.value


def _in_block(params: str, body: str, use: str, input_line: str = "input vector 8") -> str:
    return f"{input_line}\nblock b({params}) {{\n  {body}\n}}\n{use}\n"


@pytest.mark.parametrize(("expression", "args", "units"), [
    ("4*c", "3", 12),
    ("c+1", "3", 4),
    ("c - 1", "3", 2),
    ("c-1", "3", 2),
    ("(c+1)//2", "6", 3),
    ("c//2*2", "7", 6),  # equal operators group from the left
    ("8//2//2", "1", 2),
    ("c%4", "7", 3),
    ("-c+10", "3", 7),
    ("-(c-10)", "3", 7),
    ("2+3*c", "2", 8),  # `*` before `+`
    ("(2+3)*c", "2", 10),
    ("c * (c + 1)", "3", 12),
    ("c--1", "3", 4),
    ("c - -1", "3", 4),
    ("c+-1", "3", 2),
    ("10 % 3", "1", 1),
])
def test_arithmetic_follows_python_on_whole_numbers(expression, args, units):
    (dense,) = _compiled(_in_block("c", f"dense {expression}", f"b {args}"))
    assert dense.params.units == units


@pytest.mark.parametrize(("kernel", "args", "expected"), [
    ("kxk", "3", (3, 3)),
    ("3xk", "5", (3, 5)),
    ("kx3", "5", (5, 3)),
    ("(k)x(k+2)", "1", (1, 3)),
    ("(2*k-1)x1", "2", (3, 1)),
])
def test_sizes_join_factors_with_x(kernel, args, expected):
    (conv,) = _compiled(_in_block("k", f"conv 2 {kernel}", f"b {args}", "input image 1x16x16"))
    assert tuple(conv.params.kernel) == expected


def test_a_parameter_given_a_size_stands_for_all_its_parts():
    (conv,) = _compiled(_in_block("c, k", "conv cxk", "b 2 3x1", "input image 1x16x16"))
    assert (conv.params.filters, tuple(conv.params.kernel)) == (2, (3, 1))


def test_a_filters_and_kernel_size_splits_like_a_written_one():
    (conv,) = _compiled(_in_block("c", "conv (2*c)x3x3 pad=same", "b 4", "input image 1x8x8"))
    assert (conv.params.filters, tuple(conv.params.kernel)) == (8, (3, 3))
    (conv,) = _compiled(_in_block("c, k", "conv cxkxk", "b 4 3", "input image 1x8x8"))
    assert (conv.params.filters, tuple(conv.params.kernel)) == (4, (3, 3))


def test_a_word_is_a_size_only_when_every_part_is_a_parameter_or_a_number():
    # `kxk` is the parameter itself when there is one by that name
    (dense,) = _compiled(_in_block("kxk", "dense kxk", "b 5"))
    assert dense.params.units == 5
    # `max` is no size (its parts `ma` and `` are not parameters): an unknown word
    assert "unknown name `max`" in _error(_in_block("m, a", "dense max", "b 1 2")).first.message


def test_a_size_call_form_reads_as_a_size():
    # `cx(h*w)`: the parser takes `cx(` for a call; a block whose parameters make up its name reads a size
    (reshape,) = _compiled(_in_block("c, h, w", "reshape cx(h*w)", "b 2 2 2"))
    assert tuple(reshape.params.shape) == (2, 4)


@pytest.mark.parametrize("written", ["reshape c x h*w", "reshape c x h * w", "reshape cx(h*w)"])
def test_a_lone_x_between_sizes_joins_them(written):
    (reshape,) = _compiled(_in_block("c, h, w", written, "b 2 2 2"))
    assert tuple(reshape.params.shape) == (2, 4)
    nodes = _compiled("input vector 24\nreshape 2 x 3 x 4\n")
    assert tuple(nodes[-1].params.shape) == (2, 3, 4)


def test_sizes_in_reshape_and_input():
    nodes = _compiled("input image (1+2)x(4*2)x8\nflatten\nreshape (3*8)x(8)\n")
    assert tuple(nodes[-1].params.shape) == (24, 8)


def test_expressions_everywhere_a_number_goes():
    source = """input image 3x16x16
block stage(c, n, k=3) {
  repeat n-1 { conv c kxk pad=k//2 stride=1 relu }
  maxpool 2 stride=2
}
stage 4 3
stage 2*4 1+1 k=5-2
global_avgpool
dense 2*5 softmax
"""
    kinds = [(n.kind, getattr(n.params, "filters", None)) for n in _compiled(source)]
    assert kinds == [("conv2d", 4), ("conv2d", 4), ("maxpool2d", None), ("conv2d", 8), ("maxpool2d", None),
                     ("global_avgpool", None), ("dense", None)]


def test_a_default_reads_the_parameters_before_it():
    (dense,) = _compiled(_in_block("c, e=6, mid=e*c", "dense mid", "b 4"))
    assert dense.params.units == 24
    (dense,) = _compiled(_in_block("c, e=6, mid=e*c", "dense mid", "b 4 e=2"))
    assert dense.params.units == 8
    error = _error(_in_block("mid=e*c, c=1, e=6", "dense mid", "b"))
    assert error.first.message == "unknown name `e` in block `b`"


def test_a_sign_after_a_space_starts_an_argument():
    # `clip -2 2` stays two arguments; `c -1` is c, then -1
    (clip,) = _compiled("input vector 4\nclip -2 2\n")
    assert (clip.params.min, clip.params.max) == (-2, 2)
    error = _error(_in_block("c", "dense c -1", "b 3"))
    assert error.first.message == "too many arguments for `dense`"
    assert error.first.hint == "a sign after a space starts an argument of its own; to subtract, write `c-1` or `c - 1`"


def test_a_call_needs_its_parenthesis_right_after_the_name():
    (dense,) = _compiled("input vector 4\ndense 3 regularizer=l2(0.01)\n")
    assert dense.params.regularizer is not None
    error = _error("input vector 4\ndense 3 regularizer=l2 (0.01)\n")
    assert error.first.span.line == 2


@pytest.mark.parametrize("source", [
    "dense 4 * c  kxk   pad=k // 2",
    "conv (2*c)x3x3 pad=(k-1)//2 -> dense -(c%3)+c--1",
    "reshape cx(h*w) -> dense [1, 2*c]",
])
def test_fmt_keeps_expressions_as_written(source):
    text = f"block b(c, k, h, w) {{\n  {source}\n}}\n"
    formatted = format_source(text)
    for part in ("4 * c", "kxk", "k // 2", "(2*c)x3x3", "(k-1)//2", "-(c%3)+c--1", "cx(h*w)", "2*c"):
        if part in source:
            assert part in formatted
    assert format_source(formatted) == formatted


def test_fmt_joins_an_expression_split_by_a_continuation():
    # the whole is printed from its parts; each part on one line is copied as written
    text = "block b(c) {\n  dense (c + 1) * \\\n    2\n}\n"
    assert format_source(text) == "block b(c) {\n  dense (c + 1)*2\n}\n"


def test_spans_cover_the_whole_expression():
    spec = parse("block b(c) {\n  dense (c + 1) * 2 -> conv 2*c (c)x3\n}\n")
    layers = spec.statements[0].body[0].layers
    units, = layers[0].args
    assert (units.span.line, units.span.column, units.span.end_column) == (2, 9, 20)
    filters, kernel = layers[1].args
    assert (filters.span.column, filters.span.end_column) == (29, 32)
    assert (kernel.span.column, kernel.span.end_column) == (33, 38)


# --- mistakes -------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "position", "message", "hint"), [
    (_in_block("c", "dense 4*d", "b 2"), (3, 11), "unknown name `d` in block `b`", "the block's parameters are: c"),
    (_in_block("channels", "dense chanels*2", "b 2"), (3, 9), "unknown name `chanels` in block `b`",
     "did you mean `channels`?"),
    ("input vector 4\ndense 4*c\n", (2, 9), "unknown name `c` in an expression",
     "outside a block an expression computes with numbers only"),
    (_in_block("c, k", "dense c//(k-3)", "b 8 3"), (3, 12), "`c//(k-3)` divides by zero: `k-3` is 0",
     "with k = 3 (line 5)"),
    (_in_block("c", "dense c%0", "b 8"), (3, 11), "`c%0` divides by zero", None),
    (_in_block("c", "dense c*2.5", "b 2"), (3, 11), "`2.5` is not a whole number",
     "expressions compute with whole numbers; `//` divides to one (`c//2`)"),
    (_in_block("c", "dense 2*c", "b 0.5"), (3, 11), "`c` is 0.5 here (given at line 5), not a whole number",
     "expressions compute with whole numbers; `//` divides to one (`c//2`)"),
    (_in_block("c", "dense 2*c", "b same"), (3, 11), "`c` is `same` here (given at line 5), not a number",
     "pass a whole number for it"),
    (_in_block("c", "dense 2*c", "b 3x3"), (3, 11), "`c` is the size 3x3 here (given at line 5), not a number",
     "sizes cannot be computed with; pass a number"),
    (_in_block("k", "conv 2 2*kxk", "b 3", "input image 1x8x8"), (3, 12), "`kxk` is a size, not a number",
     "sizes cannot be computed with; write the arithmetic inside a part: `(2*c)x3x3`"),
    (_in_block("c", "conv 4 (c-8)x3", "b 2", "input image 1x8x8"), (3, 10),
     "the parts of a size are whole numbers of at least 1: `c-8` is -6 here", "with c = 2 (line 5)"),
    (_in_block("k", "conv 4 kx0", "b 2", "input image 1x8x8"), (3, 10),
     "the parts of a size are whole numbers of at least 1: got 0", None),
    (_in_block("c", "dense c*c*c", "b 3000000000"), (3, 9),
     "`c*c*c` is too large: whole numbers are at most 9,223,372,036,854,775,807", "with c = 3000000000 (line 5)"),
    (_in_block("c, h, w", "reshape c x 0", "b 3 2 2"), (3, 13), "a size is written without spaces around its `x`",
     "write `3x3`, `kxk`, `3xk` or `(2*c)x(h*w)`"),
    ("input vector 4\ndense 10/2\n", (2, 9), "unexpected character `/`", "`//` divides whole numbers: `c//2`"),
    ("input vector 4\nrepeat 2-2 { dense 2 }\n", (2, 8), "repeat needs one whole number of times, at least 1",
     "write `repeat 3 { ... }`"),
    ("input vector 4\ndense ?*2\n", (2, 7), "`?` (a size known only when the model runs) cannot be computed with", None),
])
def test_mistakes_are_positioned_with_a_hint(source, position, message, hint):
    first = _error(source).first
    assert (first.span.line, first.span.column) == position
    assert first.message == message
    assert first.hint == hint


def test_every_mistake_in_the_file_is_reported():
    source = _in_block("c", "dense c//0 -> dense 2.5*c -> dense d", "b 2")
    messages = [d.message for d in _error(source).diagnostics]
    assert messages == ["`c//0` divides by zero", "`2.5` is not a whole number", "unknown name `d` in block `b`"]


def test_a_block_used_twice_reports_each_use_that_goes_wrong():
    source = "input vector 4\nblock b(k) {\n  dense 12//(k-1)\n}\nb 1\nb 3\nb 1\n"
    diagnostics = _error(source).diagnostics
    assert [(d.message, d.hint) for d in diagnostics] == [("`12//(k-1)` divides by zero: `k-1` is 0", "with k = 1 (line 5)"),
                                                          ("`12//(k-1)` divides by zero: `k-1` is 0", "with k = 1 (line 7)")]


def test_deep_nesting_is_an_error_not_a_crash():
    deep = "(" * 60 + "1" + ")" * 60
    assert _error(f"input vector 4\ndense {deep}\n").first.message == "a value nested more than 50 deep"
    long = "1" + "+1" * 3000
    assert _error(f"input vector 4\ndense {long}\n").first.message == "a value nested more than 50 deep"
    lists = "[" * 3000 + "]" * 3000
    assert _error(f"input vector 4\ndense 2 init={lists}\n").first.message == "a value nested more than 50 deep"


def test_a_huge_number_in_a_size_word_is_refused_before_it_is_read():
    error = _error(_in_block("c", f"conv 2 cx{'9' * 30}", "b 3", "input image 1x8x8"))
    assert "has a part too large" in error.first.message


def test_the_editor_finds_a_parameter_inside_an_expression():
    from spec_compiler.lsp.symbols import PARAMETER, Symbol, index_symbols

    spec = parse("block b(c, e=2*c) {\n  dense 4*c -> dense (c+1)//e\n}\n")
    references = index_symbols(spec).references(Symbol(PARAMETER, "c", "b"))
    assert [(s.line, s.column) for s in references] == [(1, 9), (1, 16), (2, 11), (2, 23)]

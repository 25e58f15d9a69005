"""Issue 9, the front end: what people save, numbers beyond any model, inputs too large.

A BOM, CRLF or CR line endings, form feeds and tabs give the same model and the same
line:col and caret as a clean file; a file that is not UTF-8 is an error at its first
bad byte; numbers with thousands of digits, sizes with hundreds of parts and files of
megabytes are refused with one SpecError before the work they would cost, within 2 s
of CPU and bounded memory for any input up to 1 MB.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from conftest import ROOT

import spec_compiler
from spec_compiler import SpecError, compile_source
from spec_compiler.parser import parse
from spec_compiler.source import MAX_SOURCE_BYTES, MAX_TOKENS

LENET = (ROOT / "specs" / "lenet5.spec").read_text(encoding="utf-8")
# `dense` on an image: the error is at line 5, column 1
WRONG = "model wrong\ninput image 1x8x8\nconv 2x3x3 relu\nmaxpool 2\ndense 10 softmax\n"


def _error(text: str, path: str = "test.spec") -> SpecError:
    with pytest.raises(SpecError) as caught:
        compile_source(text, path)
    return caught.value


VARIANTS = {
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "cr": lambda t: t.replace("\n", "\r"),
    "bom": lambda t: "\ufeff" + t,
    "bom+crlf": lambda t: "\ufeff" + t.replace("\n", "\r\n"),
    "form feeds": lambda t: t.replace("\n", "\n\f", 2).replace(" ", " \f ", 1),
    "vertical tab": lambda t: t.replace(" ", "\v", 1),
    "tabs": lambda t: t.replace(" ", "\t"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_saved_variants_give_the_same_model(variant):
    expected = compile_source(LENET, "lenet5.spec").summary()
    assert compile_source(VARIANTS[variant](LENET), "lenet5.spec").summary() == expected


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_saved_variants_give_the_same_error_position_and_source_line(variant):
    clean = _error(WRONG)
    error = _error(VARIANTS[variant](WRONG))
    first = error.first
    assert (first.span.line, first.span.column) == (clean.first.span.line, clean.first.span.column) == (5, 1)
    assert first.message == clean.first.message
    shown = error.render().splitlines()[1]
    assert shown.replace("\t", " ") == "  5 | dense 10 softmax"


def test_caret_copies_the_tabs_before_the_culprit():
    line = "\tdense\t2 -> -> relu"
    error = _error(f"input vector 4\n{line}\n")
    column = error.first.span.column
    assert line[column - 1: column + 1] == "->"
    caret = error.render().splitlines()[2]
    assert caret == "    | " + "".join(c if c == "\t" else " " for c in line[: column - 1]) + "^^"


def test_a_line_separator_in_a_comment_does_not_shift_the_lines_shown():
    error = _error("input image 1x8x8\n# a \u2028 b \x85 c\ndense 2\n")
    assert error.first.span.line == 3
    assert error.render().splitlines()[1] == "  3 | dense 2"


@pytest.mark.parametrize("chain", [
    "dense 4 -> # note\nrelu",
    "dense 4 ->\n# note\n\n  relu",
    "dense 4\n-> relu",
    "dense 4  # note\n  -> relu",
    "dense 4\n# note\n\n-> relu",
])
def test_arrows_join_lines_across_comments(chain):
    spec = parse(f"input vector 3\n{chain}\n")
    (joined,) = [s for s in spec.statements if hasattr(s, "layers")]
    assert [layer.word for layer in joined.layers] == ["dense", "relu"]
    assert compile_source(spec.source).summary()["output_shape"] == [None, 4]


@pytest.mark.parametrize("text, line, column", [
    ("model x\n-> dense 2\ninput vector 3\n", 2, 1),
    ("input vector 3\nresidual {\n  -> relu\n}\n", 3, 3),
    ("input vector 3\n# only a comment\n-> relu\n", 3, 1),
])
def test_an_arrow_starting_a_line_needs_a_layer_before_it(text, line, column):
    first = _error(text).first
    assert (first.message, first.span.line, first.span.column) == ("`->` with no layer before it", line, column)


def test_an_arrow_after_an_arrow_is_still_doubled():
    first = _error("input vector 3\ndense 4 ->\n# c\n-> relu\n").first
    assert (first.message, first.span.line) == ("doubled arrow `-> ->`", 4)


# --- encodings -------------------------------------------------------------------------

def test_a_file_that_is_not_utf8_is_an_error_at_its_first_bad_byte(tmp_path):
    path = tmp_path / "latin1.spec"
    path.write_bytes(b"input vector 8\n# caf\xe9 au lait\ndense 2\n")
    with pytest.raises(SpecError) as caught:
        spectest = spec_compiler.load(path)
        del spectest
    first = caught.value.first
    assert (first.span.line, first.span.column) == (2, 6)
    assert first.message == f"cannot read {path}: byte 0xe9 is not UTF-8 text"
    assert first.hint == "save the file as UTF-8"
    assert caught.value.render().splitlines()[1] == "  2 | # caf\ufffd au lait"


def test_a_utf16_file_says_so(tmp_path):
    path = tmp_path / "utf16.spec"
    path.write_bytes("input vector 8\ndense 2\n".encode("utf-16"))
    with pytest.raises(SpecError) as caught:
        spec_compiler.load(path)
    assert caught.value.first.hint == "save the file as UTF-8 (it is UTF-16)"


def test_a_bom_file_compiles(tmp_path):
    path = tmp_path / "bom.spec"
    path.write_bytes(b"\xef\xbb\xbf" + LENET.replace("\n", "\r\n").encode("utf-8"))
    assert spec_compiler.load(path).summary()["total_params"] == 61_706


# --- numbers and strings ---------------------------------------------------------------

def test_a_number_of_thousands_of_digits_is_refused_briefly():
    error = _error("input vector 4\ndense " + "9" * 5000 + "\n")
    rendered = error.render().splitlines()
    assert error.first.message == "a word, number or string of 5,000 characters: at most 1,000"
    assert (error.first.span.line, error.first.span.column) == (2, 7)
    assert all(len(line) < 140 for line in rendered), "a long line is shown as a window"
    assert rendered[2].lstrip(" |").startswith("^")


@pytest.mark.parametrize("number, message", [
    ("9223372036854775808", "`9223372036854775808` is too large: whole numbers are at most 9,223,372,036,854,775,807"),
    ("-" + "9" * 200, "is too large: whole numbers are at most 9,223,372,036,854,775,807"),
    ("1e400", "`1e400` is too large for a number"),
    ("-1e999", "`-1e999` is too large for a number"),
    ("1x" * 20 + "1", "a size with 21 parts: at most 16"),
    ("4x" + "9" * 30, "is too large: whole numbers are at most 9,223,372,036,854,775,807"),
])
def test_numbers_beyond_any_model_are_spec_errors(number, message):
    error = _error(f"input vector 4\nreshape {number}\n")
    assert message in error.first.message
    assert (error.first.span.line, error.first.span.column) == (2, 9)


def test_the_largest_whole_number_is_read():
    error = _error("input vector 4\ndense 9223372036854775807\n")
    assert "parameters, over the limit" in error.first.message  # the parser read it; the size check refused it


def test_backslashes_in_strings_are_kept_except_before_a_quote_or_backslash():
    spec = parse('input vector 4\ndense 2\ntrain {\n  data="C:\\new\\x.npz" loss="a\\"b\\\\c"\n}\n')
    values = {o.key: o.value.value for o in spec.statements[-1].options}
    assert values == {"data": "C:\\new\\x.npz", "loss": 'a"b\\c'}


def test_invisible_characters_are_named_and_never_echoed():
    error = _error("input vector 4\ndense 2 \x1b[31m\n")
    assert error.first.message == "unexpected character U+001B (a control character)"
    assert "\x1b" not in error.render()
    assert _error("input vector 4\ndense 2 \u00a0\n").first.message == \
        "unexpected character U+00A0 (NO-BREAK SPACE)"


# --- limits, checked before the work ---------------------------------------------------

MB = 1_000_000
HEAD = "model big\ninput vector 4\n"
PATHOLOGICAL = {
    "layer lines": HEAD + "dense 4\n" * ((MB - 100) // 8),
    "one-word layers": HEAD + "relu;" * ((MB - 100) // 5),
    "a huge number": HEAD + "dense " + "9" * (MB - 100) + "\n",
    "a huge size": HEAD + "reshape " + "2x" * ((MB - 100) // 2) + "2\n",
    "a huge name": HEAD + "a" * (MB - 100) + "\n",
    "a huge string": HEAD + 'dense 4 name="' + "a" * (MB - 100) + '"\n',
    "opening braces": HEAD + "group {" * ((MB - 100) // 7),
    "closing braces": HEAD + "}" * (MB - 100),
    "arrows": HEAD + "dense 4 " + "-> " * ((MB - 100) // 3),
    "spaces, then a mistake": HEAD + " " * (MB - 100) + "dense 4 -> -> relu\n",
    "blank lines, then a mistake": HEAD + "\n" * (MB - 100) + "dense 4 -> -> relu\n",
    "comment lines": HEAD + "# a comment line, nothing else\n" * ((MB - 100) // 31),
    "nested bodies": HEAD + "group { " * 60 + "relu" + " }" * 60 + "\n" + "dense 4\n" * ((MB - 1000) // 8),
    "a syntax error on every line": HEAD + "dense 4 -> -> relu\n" * ((MB - 100) // 19),
    "errors spread through a large file": HEAD + ("dense 4 name=abcdefghijklmnop\n" * 60 + "dense -> ->\n") * 20,
    "a long list": HEAD + "dense 4 init=normal([" + "1," * ((MB - 100) // 2) + "1])\n",
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_every_error_on_a_megabyte_comes_within_2_seconds_and_bounded_memory(name):
    text = PATHOLOGICAL[name]
    assert len(text) <= MB
    tracemalloc.start()
    started = time.process_time()  # CPU time: the machine may be busy with other work
    try:
        with pytest.raises(SpecError) as caught:
            compile_source(text, "big.spec")
        caught.value.render()
        seconds = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 2, f"{seconds:.2f} s"
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MiB"


def test_a_large_file_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "huge.spec"
    path.write_bytes(b"input vector 4\n" + b"dense 4\n" * (5 * MB // 8))
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as caught:
            spec_compiler.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.first.message == f"{path} is larger than {MAX_SOURCE_BYTES:,} bytes: too large to be a spec"
    assert peak < 3 * MB


def test_the_token_limit_points_at_the_first_token_over_it():
    text = "input vector 4\n" + "relu\n" * MAX_TOKENS
    first = _error(text).first
    assert first.message == f"the spec has more than {MAX_TOKENS:,} tokens (words, numbers and symbols)"
    # line 1 holds 4 tokens (with its line break), every later line 2: `relu` and its line break
    assert first.span.line == 2 + (MAX_TOKENS + 1 - 5) // 2


def test_a_file_at_the_token_limit_still_compiles_quickly():
    text = "model big\ninput vector 4\n" + "dense 4 -> relu -> dropout 0.1\n" * ((MAX_TOKENS - 20) // 8)
    started = time.process_time()
    model = compile_source(text, "big.spec")
    assert len(model.info.layers) == 3 * ((MAX_TOKENS - 20) // 8)
    assert time.process_time() - started < 4


def test_further_syntax_errors_are_looked_for_only_in_small_files():
    small = "input vector 4\n" + "dense 4 -> -> relu\n" * 3
    assert len(_error(small).diagnostics) == 3
    large = "input vector 4\n" + "dense 4 name=abcdefghijklmnopqrstuvw\n" * 8000 + "dense 4 -> -> relu\n" * 3
    assert len(_error(large).diagnostics) == 1

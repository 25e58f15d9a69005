"""Every user mistake of issue 2: its message, position (line:col), caret and hint.

Each case is a file in tests/golden/errors/NAME.spec (its first line says what is
wrong) with the exact rendered output beside it in NAME.out. The table below pins the
first error's position and message and the number of errors, so a golden file cannot
be overwritten into something wrong without a visible change here.

Rewrite the golden files after an intended change: `python -m pytest tests/test_errors.py
--overwrite` (or SPECC_OVERWRITE=1), then review `git diff tests/golden`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, check_golden

from spec_compiler import SpecError, compile_source
from spec_compiler.errors import Diagnostic, Span

ERRORS = ROOT / "tests" / "golden" / "errors"

# name: (line, column, number of errors, first error's message)
EXPECTED: dict[str, tuple[int, int, int, str]] = {
    # syntax
    "unclosed_brace": (4, 10, 1, "unclosed `{`: the file ends before its `}`"),
    "stray_arrow": (3, 1, 1, "`->` with no layer before it"),
    "doubled_arrow": (3, 20, 1, "doubled arrow `-> ->`"),
    "trailing_arrow": (3, 15, 1, "`->` with no layer after it"),
    "arrow_before_brace": (4, 23, 1, "`->` with no layer after it"),
    "missing_value": (3, 19, 1, "missing value after `=`"),
    "missing_value_in_body": (3, 28, 1, "missing value after `=`"),
    "unmatched_brace": (4, 1, 1, "unmatched `}`"),
    "unexpected_character": (3, 12, 1, "unexpected character `@`"),
    "two_statements_one_line": (3, 32, 1, "`branch` starts a new statement on the same line"),
    "syntax_errors_all_reported": (3, 15, 3, "doubled arrow `-> ->`"),
    # unknown names, with "did you mean"
    "unknown_layer": (4, 1, 1, "unknown layer `maxpol`"),
    "unknown_activation": (3, 10, 1, "unknown activation `rellu`"),
    "unknown_standalone_activation": (4, 1, 1, "unknown layer `sigmoud`"),
    "unknown_option": (3, 12, 1, "`conv` has no option `strides`"),
    "unknown_initializer": (3, 15, 1, "unknown initializer `he_normall`"),
    "unknown_input_kind": (2, 7, 1, "unknown input kind `img`"),
    "unknown_train_option": (5, 8, 4, "unknown loss `binary_crossentropi`"),
    "unknown_call_option": (2, 16, 3, "`input` has no option `vocabulary`"),
    "activation_words": (3, 10, 2, "`dense` takes one activation word, got `relu` and `softmax`"),
    # wrong types or ranges
    "units_zero": (3, 7, 1, "dense units must be greater than 0, got 0"),
    "dropout_range": (4, 9, 1, "dropout rate must be less than 1, got 1.5"),
    "negative_kernel": (3, 8, 1, "conv kernel must be greater than 0, got -5"),
    "stride_zero": (3, 19, 1, "conv stride must be greater than 0, got 0"),
    "wrong_type_pad": (3, 16, 1, "conv pad must be `valid` or `same`, a whole number or sizes like 3x3, got `sane`"),
    "wrong_type_units": (3, 7, 2, "dense units must be a whole number, got `ten`"),
    "wrong_type_bool": (3, 17, 1, "conv bias must be true or false, got `maybe`"),
    # shapes
    "kernel_too_large": (4, 1, 1, "conv2d kernel 5x5 is larger than its input 6x2x2 (height 2) (from maxpool at line 3)"),
    "pool_too_large": (3, 1, 1, "maxpool2d window 7x7 is larger than its input 1x4x4 (height 4, padded to 6) "
                                "(from input image at line 2)"),
    "dense_on_image": (5, 1, 1, "dense expects a flat input, got 6x14x14 (from avgpool at line 4)"),
    "conv_on_vector": (3, 1, 1, "conv2d expects an image CxHxW, got 64 (a vector) (from input vector at line 2)"),
    "reshape_count": (3, 1, 1, "reshape to 3x30 (90 elements) from 100 (100 elements): the element counts differ "
                               "(from input vector at line 2)"),
    "concat_mismatch": (5, 3, 1, "concat branches must agree on every size except channels: branch 1 gives 8x32x32, "
                                 "branch 2 gives 8x30x30"),
    "multiply_broadcast": (5, 3, 1, "multiply branches do not broadcast: branch 1 gives 32x16x16, branch 2 gives "
                                    "16x1x1 (axis 0: 32 and 16)"),
    "multiply_rank": (5, 3, 1, "multiply branches give different ranks: branch 1 gives 32x16x16, branch 2 gives "
                               "32 (a vector)"),
    "permute_from_one": (3, 1, 1, "permute 2x1 numbers the axes from 1, as Keras' Permute does; specc counts every "
                                  "axis from 0"),
    "add_mismatch": (5, 3, 1, "add branches do not broadcast: branch 1 gives 16x32x32, branch 2 gives 32x32x32 "
                              "(axis 0: 16 and 32)"),
    "residual_no_projection": (3, 1, 1, "residual body changes the shape from 16x32x32 to 32x16x16, "
                                        "so its input cannot be added to it"),
    "residual_wrong_projection": (5, 3, 1, "residual body gives 32x16x16 but its shortcut gives 32x32x32: "
                                           "they must match to be added"),
    "flatten_dynamic": (3, 1, 1, "flatten needs every size known, got ?x16 (a sequence, TxF) "
                                 "(from input sequence at line 2)"),
    # blocks
    "undefined_block": (4, 1, 1, "unknown layer or block `basik`"),
    "recursive_block": (3, 14, 1, "block `a` uses itself (a -> b -> a)"),
    "block_arguments": (4, 12, 3, "block `basic` takes 2 argument(s), got 3"),
    "block_defined_twice": (3, 7, 1, "block `basic` is defined twice"),
    "block_unknown_name": (2, 23, 1, "unknown name `d` in block `basic`"),
    "block_argument_type": (4, 12, 2, "conv stride must be greater than 0, got 0"),
    "repeat_count": (3, 8, 1, "repeat needs one whole number of times, at least 1"),
    "body_marker_outside": (3, 1, 1, "`branch { }` is only allowed directly inside `concat`, `add`, "
                                  "`multiply`, `maximum`, `minimum` or `average`"),
    # integer expressions (issue 10)
    "expression_unknown_name": (4, 10, 1, "unknown name `chanels` in block `bottleneck`"),
    "expression_division_by_zero": (4, 12, 1, "`c//(k-3)` divides by zero: `k-3` is 0"),
    "expression_not_whole": (4, 9, 3, "`c` is 0.5 here (given at line 8), not a whole number"),
    "expression_size_part": (4, 10, 1, "the parts of a size are whole numbers of at least 1: `k-2` is 0 here"),
    "expression_too_large": (4, 9, 1, "`c*c*c` is too large: whole numbers are at most 9,223,372,036,854,775,807"),
    "expression_size_arithmetic": (4, 12, 1, "`kxk` is a size, not a number"),
    "expression_slash": (3, 9, 1, "unexpected character `/`"),
    "expression_sign_after_space": (4, 11, 1, "too many arguments for `dense`"),
    # kinds of data
    "embedding_float": (3, 1, 1, "embedding expects token ids, got 64 (a vector) (from input vector at line 2)"),
    "conv_on_tokens": (3, 1, 1, "conv1d expects float features, got token ids 100 (from input tokens at line 2)"),
    "recurrent_image": (3, 1, 1, "lstm expects a sequence TxF, got 1x28x28 (an image, CxHxW) (from input image at line 2)"),
    # normalization and transformer kinds (issue 10)
    "groupnorm_groups": (4, 1, 1, "groupnorm groups=4 must divide the 6 channels of its input 6x8x8 "
                                  "(from conv at line 3)"),
    "padding_mask_without_tokens": (3, 1, 1, "multihead_attention mask=padding reads the padding (token id 0) of a "
                                             "tokens input, but the model's input is ?x16 (a sequence, TxF)"),
    "positional_dynamic_length": (4, 1, 1, "a learned positional_embedding needs a table length: its input ?x32 has "
                                           "a run-time length (from embedding at line 3)"),
    # size limits, checked before anything is allocated
    "max_params": (3, 1, 1, "the model has 10,000,100,000 parameters, over the limit of 2,000,000,000 "
                            "(the largest layer, dense_1, has 10,000,100,000)"),
    "activation_memory": (3, 1, 1, "the model needs 64.00 GiB of activations per sample, over the limit of 16.00 GiB "
                                   "(the largest, conv2d_1, needs 64.00 GiB)"),
    # nesting deep enough to exhaust Python's stack
    "nested_too_deep": (53, 10, 1, "bodies nested more than 50 deep"),
    # several errors at once
    "many_errors": (3, 12, 4, "unknown activation `rellu`"),
    "branch_errors_all_reported": (4, 12, 2, "conv2d kernel 9x9 is larger than its input 16x8x8 (height 8) "
                                             "(from input image at line 2)"),
    "too_many_errors": (3, 7, 24, "dense units must be greater than 0, got 0"),
    # the file as a whole
    "no_input": (1, 1, 1, "the spec has no `input` line"),
    "second_input": (2, 7, 2, "with several inputs, each needs a name"),
    "duplicate_name": (4, 15, 1, "layer name `fc` is used twice"),
    # graphs: named tensors, merges of tensors, shared layers, outputs
    "graph_undefined_tensor": (5, 5, 1, "undefined tensor `rihgt`"),
    "graph_used_before_line": (4, 11, 1, "`b` is used before its line (line 5)"),
    "graph_cycle": (3, 5, 1, "`b` is used before its line (line 4); cycle: a -> b -> a"),
    "graph_defined_twice": (4, 1, 1, "tensor `h` is defined twice"),
    "graph_unused": (4, 1, 1, "`extra` is never used"),
    "graph_unused_line": (4, 1, 1, "the value of this line is never used"),
    "graph_name_is_kind": (3, 1, 1, "tensor name `dense` is also a layer kind"),
    "graph_merge_not_tensor": (4, 7, 1, "`proj` names a layer, not a tensor"),
    "graph_merge_broadcast": (4, 11, 1, "add tensors do not broadcast: `photo` gives 3x32x32, `mask` gives 3x16x16 "
                                        "(axis 1: 32 and 16)"),
    "graph_reuse_arguments": (5, 25, 1, "`enc` reuses the layer from line 4; it takes no arguments"),
    "graph_reuse_shape": (5, 25, 1, "`enc` reuses the layer from line 4, which reads 784; here it reads 1024"),
    "graph_output_unknown": (6, 14, 1, "undefined tensor `parety`"),
    "graph_no_head": (4, 1, 1, "with several inputs, a line must say which tensor it reads"),
    # tied weights
    "tie_shape": (5, 23, 1, "dense 1000 over 768 features has a 1000x768 weight; wte's table is 1000x64"),
    "tie_unknown": (4, 23, 1, "`tie=wtf` names no earlier layer"),
    "tie_no_table": (5, 23, 1, "`tie=proj`: dense `proj` has no table to share"),
}

# errors that must carry a "did you mean" hint
SUGGESTIONS = {
    "unknown_layer": "maxpool", "unknown_activation": "relu", "unknown_standalone_activation": "sigmoid",
    "unknown_option": "stride", "unknown_initializer": "he_normal", "unknown_input_kind": "image",
    "undefined_block": "basic", "unknown_train_option": "binary_crossentropy", "unknown_call_option": "betas",
    "graph_undefined_tensor": "right", "graph_output_unknown": "parity", "tie_unknown": "wte",
    "expression_unknown_name": "channels",
}


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _error_of(name: str) -> SpecError:
    path = ERRORS / f"{name}.spec"
    with pytest.raises(SpecError) as caught:
        compile_source(path.read_text(encoding="utf-8"), _relative(path))
    return caught.value


def test_every_case_has_a_file_and_every_file_a_case():
    files = {p.stem for p in ERRORS.glob("*.spec")}
    assert files == set(EXPECTED), (
        f"golden files without an EXPECTED entry: {sorted(files - set(EXPECTED))}; "
        f"entries without a file: {sorted(set(EXPECTED) - files)}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_error(name, overwrite):
    error = _error_of(name)
    line, column, count, message = EXPECTED[name]
    first = error.first
    assert (first.span.line, first.span.column) == (line, column)
    assert first.message == message
    assert len(error.diagnostics) + error.not_shown == count
    rendered = error.render()
    # compiler format: FILE:LINE:COL: error: MESSAGE, the source line, a caret under the culprit
    assert rendered.startswith(f"{_relative(ERRORS / name)}.spec:{line}:{column}: error: {message}")
    for diagnostic in error.diagnostics:
        assert diagnostic.span is not None, diagnostic
        text = diagnostic.render(error.source)
        source_line, caret_line = text.splitlines()[1:3]
        assert source_line.startswith(f"  {diagnostic.span.line} | ")
        gutter = len(f"  {diagnostic.span.line} | ")
        assert caret_line[gutter + diagnostic.span.column - 1] == "^", text
    if name in SUGGESTIONS:
        assert f"did you mean `{SUGGESTIONS[name]}`?" in rendered
    check_golden(ERRORS / f"{name}.out", rendered, overwrite)


def test_caret_spans_the_culprit():
    error = _error_of("unknown_initializer")
    assert error.render().splitlines()[2] == "    | " + " " * 14 + "^" * len("he_normall")


def test_diagnostic_without_source_line_still_renders():
    text = Diagnostic("bad thing", Span("x.spec", 99, 3), "try again").render("one line\n")
    assert text == "x.spec:99:3: error: bad thing\nhint: try again"


def test_limits_are_overridable():
    from spec_compiler import Limits

    source = (ERRORS / "max_params.spec").read_text(encoding="utf-8")
    with pytest.raises(SpecError, match="over the limit of 1,000"):
        compile_source("input vector 100\ndense 100\n", "small.spec", limits=Limits(max_params=1000))
    # raised, the limit lets the big model through (nothing is allocated either way)
    model = compile_source(source, "big.spec", limits=Limits(max_params=20_000_000_000))
    assert model.summary()["total_params"] == 10_000_100_000
    with pytest.raises(SpecError, match="activations per sample, over the limit of 0.00 GiB"):
        compile_source("input vector 100\ndense 100\n", "small.spec", limits=Limits(max_activation_bytes=100))


def test_deep_block_chains_are_spec_errors():
    blocks = "".join(f"block b{i}() {{ b{i + 1} }}\n" for i in range(60)) + "block b60() { dense 4 }\n"
    with pytest.raises(SpecError, match=r"blocks nested more than 50 deep \(b0 -> b1 -> b2 -> ... -> b50\)"):
        compile_source(blocks + "input vector 4\nb0\n", "chain.spec")
    # bodies inside blocks inside bodies: past what the checks catch, still a SpecError
    mixed = "".join(f"block b{i}() {{ " + "repeat 1 { " * 20 + f"b{i + 1}" + " }" * 20 + " }\n" for i in range(45))
    with pytest.raises(SpecError, match="nested too deeply"):
        compile_source(mixed + "block b45() { dense 4 }\ninput vector 4\nb0\n", "mixed.spec")


# --- through the command line: exit codes, no traceback ------------------------------

def _specc(*args: str) -> subprocess.CompletedProcess:
    """`specc ARGS` as a separate process, the way a user runs it."""
    script = Path(sys.executable).with_name("specc")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "spec_compiler.cli"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def _cli(*args: str):
    """`specc ARGS` in this process (click's runner): same code path, no start-up cost."""
    from click.testing import CliRunner

    from spec_compiler.cli import main

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=True)
    finally:
        os.chdir(cwd)


def _stderr(result) -> str:
    return getattr(result, "stderr", None) or result.output


@pytest.mark.parametrize("name", ["dense_on_image", "many_errors"])
def test_cli_process_reports_errors_with_exit_1_and_no_traceback(name):
    result = _specc("compile", f"tests/golden/errors/{name}.spec")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr == (ERRORS / f"{name}.out").read_text(encoding="utf-8")


def test_cli_process_misuse_exits_2():
    result = _specc("compile", "specs/lenet5.spec", "--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "No such option" in result.stderr and "--no-such-option" in result.stderr


@pytest.mark.parametrize("name", ["syntax_errors_all_reported", "max_params", "too_many_errors", "recurrent_image"])
def test_cli_reports_errors_with_exit_1(name):
    result = _cli("compile", f"tests/golden/errors/{name}.spec")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    assert _stderr(result) == (ERRORS / f"{name}.out").read_text(encoding="utf-8")


def test_cli_size_limits_are_options():
    result = _cli("compile", "specs/vgg16.spec", "--max-params", "1e8")
    assert result.exit_code == 1, result.output
    assert "the model has 138,357,544 parameters, over the limit of 100,000,000" in _stderr(result)
    assert "hint: shrink the model, or raise the limit with --max-params N" in _stderr(result)
    result = _cli("compile", "specs/vgg16.spec", "--max-activation-memory", "10MiB")
    assert result.exit_code == 1, result.output
    assert "of activations per sample, over the limit of 0.01 GiB" in _stderr(result)
    result = _cli("compile", "tests/golden/errors/max_params.spec", "--max-params", "2e10", "--json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [
    ("compile",),  # no file
    ("compile", "no/such/file.spec"),
    ("compile", "specs/lenet5.spec", "--no-such-option"),
    ("compile", "specs/lenet5.spec", "--max-activation-memory", "lots"),
    ("compile", "specs/lenet5.spec", "--max-params", "many"),
    ("compile", "specs/lenet5.spec", "--depth", "deep"),
    ("frobnicate",),
])
def test_cli_misuse_exits_2(args):
    result = _cli(*args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert _stderr(result).strip()


def test_cli_unreadable_spec_is_a_spec_error(tmp_path):
    bad = tmp_path / "latin1.spec"
    bad.write_bytes(b"input vector 8\n# caf\xe9\ndense 2\n")
    result = _cli("compile", str(bad))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "cannot read" in _stderr(result)

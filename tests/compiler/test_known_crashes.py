"""Issue 9: crash classes the fuzzer found, now refused at compile time with a
positioned SpecError (exact text, so a regression shows as a changed message)."""

from __future__ import annotations

import time

import pytest

from spec_compiler import SpecError, compile_source


def _error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        compile_source(text, "known.spec")
    return caught.value


def _first(text: str) -> tuple[int, int, str, str | None]:
    first = _error(text).first
    return first.span.line, first.span.column, first.message, first.hint


@pytest.mark.parametrize("body", ["{ }", "{ # only a comment\n}"])
def test_an_empty_repeat_is_refused_without_iterating(body):
    started = time.process_time()
    line, column, message, _ = _first(f"input vector 4\nrepeat 1000000000 {body}\ndense 2\n")
    assert (line, column, message) == (2, 1, "repeat needs at least one layer in its body")
    assert time.process_time() - started < 1


@pytest.mark.parametrize("text, column, made", [
    ("repeat 1000000000 { dense 2 }", 1, "1,000,000,000"),
    ("repeat 3 { repeat 1000000000 { dense 2 } }", 12, "1,000,000,000"),
    ("repeat 100000000 { repeat 2 { dense 2 } }", 1, "100,000,000"),
    ("repeat 30000 { dense 2 -> relu }", 1, "60,000"),
])
def test_a_repeat_past_the_layer_limit_is_refused_before_copying(text, column, made):
    started = time.process_time()
    error = _error(f"input vector 4\n{text}\n")
    assert len(error.diagnostics) == 1
    first = error.first
    assert (first.span.line, first.span.column) == (2, column)
    assert first.message == f"the model expands to more than 50,000 layers (this repeat adds at least {made})"
    assert time.process_time() - started < 1


UNKNOWN = "(a length known only at run time)"


@pytest.mark.parametrize("text, message", [
    ("input sequence ?x6\npermute 1x0\ndense 8\n", f"dense needs a known number of features, got ? {UNKNOWN} "
                                                   "in its input 6x? (from permute at line 2)"),
    ("input sequence ?x6\nsum 1\nlayernorm\n", f"layernorm needs a known number of features, got ? {UNKNOWN} "
                                               "in its input ? (from sum at line 2)"),
    ("input sequence Tx2\npermute 1x0\nattention score=general\n",
     f"attention needs a known number of features, got T {UNKNOWN} in its input 2xT (from permute at line 2)"),
    ("input sequence ?x6\npermute 1x0\nmha heads=2\n", f"multihead_attention needs a known number of features, "
                                                      f"got ? {UNKNOWN} in its input 6x? (from permute at line 2)"),
    ("input sequence ?x8\npermute 1x0\nlstm 1\n", f"lstm needs a known number of features, got ? {UNKNOWN} "
                                                  "in its input 8x? (from permute at line 2)"),
    ("input sequence ?x5\nexpand_dims 1\nconv 2 1x1\n", f"conv2d needs a known number of channels, got ? {UNKNOWN} "
                                                       "in its input ?x1x5 (from expand_dims at line 2)"),
    ("input sequence ?x5\nexpand_dims 1\nsepconv 3 1x1\n", f"separable needs a known number of channels, got ? "
                                                          f"{UNKNOWN} in its input ?x1x5 (from expand_dims at line 2)"),
    ("input sequence ?x5\nexpand_dims 1\ngroupnorm 1\n", f"groupnorm needs a known number of channels, got ? "
                                                        f"{UNKNOWN} in its input ?x1x5 (from expand_dims at line 2)"),
    ("input sequence ?x5\nexpand_dims 1\nchannel_shuffle 1\n", f"channel_shuffle needs a known number of channels, "
                                                              f"got ? {UNKNOWN} in its input ?x1x5 "
                                                              "(from expand_dims at line 2)"),
])
def test_a_run_time_length_moved_where_a_layer_sizes_its_weights_is_refused(text, message):
    line, column, found, hint = _first(text)
    assert (line, column, found) == (3, 1, message)
    assert "permute it back" in hint


def test_a_run_time_length_in_a_conv_s_spatial_axes_counts_as_1_in_flops():
    info = compile_source("input sequence Tx3\nexpand_dims 0\ndepthwise 2\nsepconv 4 1x1\n", "known.spec").info
    assert [layer.flops for layer in info.layers[1:]] == [1 * 1 * 2 * 4, 1 * 2 * 1 + 1 * 2 * 4]
    assert isinstance(info.flops, int)


@pytest.mark.parametrize("text, position, message", [
    ("add { branch { dropout 0 }; branch { dropout 0 } }\nembedding 4", (2, 7),
     "add cannot combine token ids: branch 1 gives 5 (token ids)"),
    ("maximum { branch { embedding 2 }; branch { dropout 0 } }", (2, 35),
     "maximum cannot combine token ids: branch 2 gives 5 (token ids)"),
    ("residual { dropout 0 }", (2, 1), "residual cannot combine token ids: its body gives 5 (token ids)"),
    ("concat { branch { flatten }; branch { embedding 2 } }", (2, 30),
     "concat mixes token ids and float features: branch 1 gives 5 (token ids), branch 2 gives 5x2 (a sequence, TxF)"),
])
def test_arithmetic_on_token_ids_is_refused(text, position, message):
    line, column, found, hint = _first(f"input tokens 5 vocab=10\n{text}\n")
    assert ((line, column), found) == (position, message)
    assert "embedding N" in hint


def test_token_ids_concatenated_stay_token_ids():
    info = compile_source("input tokens 5 vocab=10\nconcat { branch { dropout 0 }; branch { dropout 0 } }\n"
                          "embedding 4\n", "known.spec").info
    joined = info.layers[0].output
    assert (joined.dims, joined.dtype, joined.vocab) == ((10,), "int", 10)
    line, column, message, _ = _first("input tokens 6 vocab=4\nconcat { branch { flatten }; branch { flatten } }\n"
                                      "silu\n")
    assert (line, column, message) == (3, 1, "an activation expects float features, got token ids 12 "
                                             "(from concat at line 2)")


@pytest.mark.parametrize("text, message", [
    ("input vector 5\ngroupnorm 5\n", "groupnorm groups=5 leaves one value per group of its input 5 "
                                      "(from input vector at line 1)"),
    ("input image 2x1x1\ninstancenorm\n", "instancenorm needs more than one position per channel, "
                                          "got 2x1x1 (an image, CxHxW) (from input image at line 1)"),
    ("input sequence 6x4\nmaxpool1d 1x3\n", "maxpool1d size needs 1 size, got 1x3"),
    ("input sequence 6x4\navgpool1d 2 stride=1x1\n", "avgpool1d stride needs 1 size, got 1x1"),
])
def test_what_pytorch_would_refuse_at_build_is_refused_at_compile(text, message):
    assert _first(text)[:3] == (2, 1, message)


@pytest.mark.parametrize("text", ["input vector 6\ngroupnorm 3\n", "input sequence ?x4\ninstancenorm\n",
                                  "input image 2x1x2\ninstancenorm\n", "input sequence 6x4\nmaxpool1d 3\n"])
def test_their_neighbours_still_compile(text):
    compile_source(text, "known.spec")

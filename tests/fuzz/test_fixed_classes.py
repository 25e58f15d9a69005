"""Crash classes the fuzzer found and that are fixed: a regression test for each, with the
exact message where a spec is now refused (tests/fuzz/known.py lists the ones still open).
"""

from __future__ import annotations

import ast

import pytest
import torch

from fuzz.oracle import check_case
from spec_compiler import SpecError, compile_source
from spec_compiler.backends.python_text import Doc, render

REFUSED = {
    "a residual whose body pools a `?` length": (
        "input sequence ?x4\nresidual { maxpool1d 2 }\n",
        "fuzz.spec:2:1: error: residual body changes the shape from ?x4 to ?x4, so its input cannot be added to it; "
        "the run-time lengths print alike (?) but are not the same length (maxpool1d at line 2 changed it)"),
    "concat of a floor and a ceiling halving of a `?` length": (
        "input sequence ?x4\nconcat { branch { maxpool1d 2 }; branch { conv1d 4 3 stride=2 pad=same } }\n",
        "fuzz.spec:2:34: error: concat branches must agree on every size except axis 1: branch 1 gives ?x4, "
        "branch 2 gives ?x4; the run-time lengths print alike (?) but are not the same length "
        "(maxpool1d at line 2 and conv1d at line 2 changed it)"),
    "mask=padding after a layer that changes the length": (
        "input tokens ? vocab=7\nembedding 2\nconv_transpose1d 2 2\nluong_attention mask=padding\n",
        "fuzz.spec:4:1: error: luong_attention mask=padding has one value per input token (?), but its input ?x2 "
        "has a different number of steps (from conv_transpose1d at line 3)"),
    "init=orthogonal on a normalization's gamma": (
        "input vector 4\nlayernorm init=orthogonal\n",
        "fuzz.spec:2:1: error: layernorm init=orthogonal needs a weight of rank 2 or more, "
        "but gamma (the scale) is a vector"),
    "init=orthogonal on the class token": (
        "input sequence 3x4\nclass_token init=orthogonal\n",
        "fuzz.spec:2:1: error: class_token init=orthogonal needs a weight of rank 2 or more, but the token is a vector"),
    "bias_init=orthogonal": (
        "input vector 4\ndense 3 bias_init=orthogonal\n",
        "fuzz.spec:2:1: error: dense bias_init=orthogonal needs a weight of rank 2 or more, but a bias is a vector"),
    "bias_constraint with an axis past a vector's": (
        "input vector 6\ndense 8 bias_constraint=max_norm(3, axis=1)\n",
        "fuzz.spec:2:1: error: dense bias_constraint axis=1 is out of range: a bias is a vector (axis 0 or -1)"),
    "a layer named `training`": (
        "input vector 4\ndense 2 name=training\n",
        "fuzz.spec:2:14: error: layer name `training` is taken by PyTorch (every module's train/eval flag)"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_at_compile_time_with_one_message(name):
    source, message = REFUSED[name]
    with pytest.raises(SpecError) as caught:
        compile_source(source, "fuzz.spec")
    assert caught.value.render().splitlines()[0] == message


ACCEPTED = {
    "two layers computing the same length": "input sequence ?x4\nadd { branch { maxpool1d 2 }; branch { avgpool1d 2 } }\n",
    "a length-keeping body": "input sequence ?x4\nresidual { dense 4 -> layernorm }\n",
    "a joined length, kept by the body": "input sequence Tx4\nconcat axis=0 { branch { dense 4 }; branch { dense 4 } }\n"
                                         "residual { dense 4 }\n",
    "a layer named like a private nn.Module attribute": "input vector 4\ndense 2 name=_modules\n",
    "a layer name that Python mangles in a class": "input vector 4\ndense 2 name=__x\n",
    "a model named like a Python keyword": "model true\ninput vector 4\ndense 2\n",
    "a model named None": "model None\ninput vector 4\ndense 2\n",
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_compiles_builds_and_emits_the_same_model(name):
    result = check_case(ACCEPTED[name], emit=True)
    assert result.outcome == "compiled" and not result.findings, result.findings


def test_windows_path_in_emitted_source():
    result = check_case("input vector 4\ndense 2\n", emit=True, path="C:\\new\\x.spec")
    assert result.outcome == "compiled" and not result.findings, result.findings


def test_positional_embedding_refuses_a_too_long_sequence_by_name():
    module = compile_source("input sequence Tx7\npositional_embedding max_length=3\n", "fuzz.spec").build(seed=0)
    with pytest.raises(ValueError, match=r"^positional_embedding: the sequence has 5 steps, more than its "
                                         r"max_length=3$"):
        module(torch.randn(2, 5, 7))
    assert module(torch.randn(2, 3, 7)).shape == (2, 3, 7)


def test_crop_refuses_to_leave_nothing():
    module = compile_source("input sequence Tx1\nclass_token\ncrop amount=3\ninstancenorm\n", "fuzz.spec").build(seed=0)
    with pytest.raises(ValueError, match=r"^crop: cutting 3 \+ 3 leaves nothing of a length of 6$"):
        module.eval()(torch.randn(2, 5, 1))


def test_export_refuses_a_model_that_takes_no_length(tmp_path):
    model = compile_source("input sequence Tx7\npad 3\npositional_embedding max_length=3\n", "fuzz.spec")
    with pytest.raises(SpecError) as caught:
        model.export(tmp_path / "never.onnx")
    assert caught.value.render().splitlines()[0] == (
        "fuzz.spec:3:1: error: no run-time length fits this model: at length 7, positional_embedding max_length=3 "
        "is shorter than its input 13x7 (from pad at line 2)")
    assert not list(tmp_path.iterdir())


def test_export_refuses_a_model_that_computes_nan_with_one_message(tmp_path):
    """NaN inside the graph (log after a norm) meets max pooling: PyTorch keeps it, ONNX Runtime drops it."""
    model = compile_source("input image 4x4x11\nsoftmax axis=-1\nlog -> groupnorm 4\nlog -> global_maxpool1d\n",
                           "fuzz.spec")
    with pytest.raises(SpecError) as caught:
        model.export(tmp_path / "never.onnx")
    assert caught.value.render().splitlines()[0].startswith(
        "error: ONNX Runtime and PyTorch disagree on where the output is NaN on random inputs ")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("source", [
    "input sequence Tx1\ncrop amount=3\n",  # the usual lengths are too short: export takes longer ones
    "input sequence Tx1\nclass_token\ncrop amount=3\ninstancenorm\n",  # once a segfault in ONNX Runtime
    "input sequence ?x6\nmultihead_attention 3\ngru 5\n",  # once an initial_h of the tracing batch
    "input sequence ?x6\nmultihead_attention 3\nbidirectional { lstm 5 }\n",
])
def test_export_verifies(source):
    result = check_case(source, onnx="isolated")
    assert result.outcome == "compiled" and not result.findings, result.findings


@pytest.mark.parametrize("source", [
    "input vector 14\nreshape 7x2\ngru 3\n",  # reshape once fixed the tracing batch: initial_h
    "input image 2x7x1\nreshape 7x2\nmultihead_attention heads=2\n",  # ... and a MatMul's shapes
    "input image 2x9x12\nlog\nmaxpool 2\n",  # NaN from log: PyTorch's max pooling keeps it, ONNX Runtime's not
    "input vector 4\nlog\nmax axis=0 keepdims=true\n",
])
def test_export_verifies_in_process(source):
    result = check_case(source, onnx=True)
    assert result.outcome == "compiled" and not result.findings, result.findings


def test_a_one_element_tuple_laid_out_over_lines_stays_a_tuple():
    """--emit torch once wrote `(\n    1,\n,)` for a long call holding `(1,)`: a SyntaxError."""
    text = render(Doc("f(", [Doc("(", ["x" * 120], ",)")], ")"), 0, 0)
    argument = ast.parse(text).body[0].value.args[0]
    assert isinstance(argument, ast.Tuple) and len(argument.elts) == 1, text

"""Inference over graphs built by hand: steps reading named tensors, merges at a step's
head, shared layers (counted once) and tied weights (counted at the embedding)."""

from __future__ import annotations

import pytest

from spec_compiler import compile_source
from spec_compiler.errors import Span, SpecError
from spec_compiler.inference import infer
from spec_compiler.ir import InputSpec, ModelIR, Node, OutputSpec, Step
from spec_compiler.layers import REGISTRY
from spec_compiler.shapes import TensorType
from spec_compiler.train_config import TrainConfig


def span(line: int, column: int = 1, width: int = 4) -> Span:
    return Span("graph.spec", line, column, column + width)


def node(kind: str, name: str, line: int, shares: str | None = None, **params) -> Node:
    return Node(kind, name, REGISTRY[kind].params(**params), span(line), shares=shares)


def model(inputs, steps, outputs, source: str = "") -> ModelIR:
    return ModelIR("graph", tuple(inputs), tuple(steps), tuple(OutputSpec(name, span(1)) for name in outputs),
                   TrainConfig(), "graph.spec", source)


def image(name: str, line: int) -> InputSpec:
    return InputSpec("image", TensorType((1, 8, 8)), span(line), name)


def siamese(right_size: int = 8) -> ModelIR:
    right = InputSpec("image", TensorType((1, right_size, right_size)), span(2), "right")
    tower = Step("a", ("left",), (node("flatten", "flatten_1", 3), node("dense", "enc", 3, units=4)), span(3))
    again = Step("b", ("right",), (node("flatten", "flatten_2", 4), node("dense", "enc_2", 4, shares="enc", units=4)),
                 span(4))
    merged = Step("_5", ("a", "b"), (node("concat", "concat_1", 5), node("dense", "dense_1", 5, units=1)), span(5))
    return model([image("left", 1), right], [tower, again, merged], ["_5"])


def test_a_shared_layer_counts_its_parameters_once_and_its_flops_at_every_use():
    info = infer(siamese())
    enc, shared = info.layers[1], info.layers[3]
    assert (enc.count.total, shared.count.total, shared.as_trained.total) == (64 * 4 + 4, 0, 0)
    assert shared.flops == enc.flops > 0
    assert shared.activation_bytes == enc.activation_bytes > 0
    assert info.count.total == 64 * 4 + 4 + 8 * 1 + 1


def test_steps_read_named_tensors_and_a_merge_head_reads_its_sources_as_branches():
    info = infer(siamese())
    assert [step.step.name for step in info.steps] == ["a", "b", "_5"]
    assert info.steps[2].inputs == (TensorType((4,)), TensorType((4,)))
    concat = info.steps[2].layers[0]
    assert (concat.input, concat.output) == (TensorType((4,)), TensorType((8,)))
    assert info.inputs == {"left": TensorType((1, 8, 8)), "right": TensorType((1, 8, 8))}
    assert info.outputs == {"_5": TensorType((1,))} and info.output == TensorType((1,))


def test_a_reuse_that_reads_another_shape_is_refused_at_the_reuse():
    with pytest.raises(SpecError) as caught:
        infer(siamese(right_size=6))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == "`enc` reuses the layer from line 3, which reads 64; here it reads 36"
    assert diagnostic.span.line == 4


def test_several_outputs_come_in_output_order_and_there_is_no_single_output():
    features = Step("features", ("input",), (node("flatten", "flatten_1", 2), node("dense", "dense_1", 2, units=16)),
                    span(2))
    digit = Step("digit", ("features",), (node("dense", "dense_2", 3, units=10),), span(3))
    parity = Step("parity", ("features",), (node("dense", "dense_3", 4, units=1),), span(4))
    info = infer(model([image("input", 1)], [features, digit, parity], ["parity", "digit"]))
    assert info.outputs == {"parity": TensorType((1,)), "digit": TensorType((10,))}
    with pytest.raises(ValueError, match="2 outputs"):
        _ = info.output


def test_a_merge_head_that_does_not_broadcast_points_at_the_tensor_it_names():
    left, right = image("left", 1), InputSpec("image", TensorType((1, 4, 4)), span(2), "right")
    merge = Node("add", "add_1", REGISTRY["add"].params(), span(3), body_spans=(span(3, 5, 1), span(3, 7, 1)))
    broken = model([left, right], [Step("_3", ("left", "right"), (merge,), span(3))], ["_3"])
    with pytest.raises(SpecError) as caught:
        infer(broken)
    (diagnostic,) = caught.value.diagnostics
    assert "do not broadcast" in diagnostic.message and diagnostic.span == span(3, 7, 1)


LM = "input tokens 16 vocab=100\nembedding 8 name=wte\ndense 100 tie=wte softmax\n"


def lm(tie: str, units: int = 100, table: str = "embedding") -> ModelIR:
    tokens = InputSpec("tokens", TensorType((16,), "int", 100), span(1), "input")
    first = (node("embedding", "wte", 2, units=8) if table == "embedding"
             else node("dense", "wte", 2, units=8))
    head = Node("dense", "dense_1", REGISTRY["dense"].params(units=units, tie=tie, activation="softmax"), span(3, 1, 5))
    return model([tokens], [Step("output", ("input",), (first, head), span(2))], ["output"], LM)


def test_a_tied_dense_counts_its_bias_only():
    info = infer(lm("wte"))
    assert [layer.count.total for layer in info.layers] == [100 * 8, 100]
    assert info.count.total == 900


@pytest.mark.parametrize(("case", "message", "hint"), [
    (dict(tie="wtf"), "`tie=wtf` names no earlier layer", "did you mean `wte`?"),
    (dict(tie="wte", units=50), "dense 50 over 8 features has a 50x8 weight; wte's table is 100x8",
     "a layer tied to `wte` needs 100 units and 8 input features"),
])
def test_a_tie_is_checked_against_the_table_at_its_option(case, message, hint):
    with pytest.raises(SpecError) as caught:
        infer(lm(**case))
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.message, diagnostic.hint) == (message, hint)
    assert (diagnostic.span.line, diagnostic.span.column, diagnostic.span.end_column) == (3, 11, 15)


def test_a_tie_to_a_layer_without_a_table_is_refused():
    tokens_as_floats = lm("wte", table="dense")
    vector = InputSpec("vector", TensorType((16,)), span(1), "input")
    graph = ModelIR("graph", (vector,), tokens_as_floats.steps, tokens_as_floats.outputs, TrainConfig(), "graph.spec", LM)
    with pytest.raises(SpecError, match="dense `wte` has no table to share"):
        infer(graph)


def test_a_tie_inside_a_body_is_checked_and_counted_like_any_other():
    block = "input tokens 16 vocab=100\nblock lm() { embedding 8 name=wte -> dense 100 tie=TARGET }\nlm\n"
    model = compile_source(block.replace("TARGET", "lm_1.wte"))
    assert model.info.count.total == 100 * 8 + 100
    with pytest.raises(SpecError) as caught:
        compile_source(block.replace("TARGET", "wte"))
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.message == "`tie=wte` names no earlier layer"
    assert diagnostic.hint == "a layer in a body is named by its path: did you mean `lm_1.wte`?"

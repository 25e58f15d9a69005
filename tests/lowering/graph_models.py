"""Graph models built as IR by hand (a siamese pair, a two-head model), for the backend
tests: they need no graph syntax."""

from __future__ import annotations

from spec_compiler.errors import Span
from spec_compiler.inference import infer
from spec_compiler.ir import InputSpec, ModelIR, Node, OutputSpec, Step
from spec_compiler.layers import REGISTRY
from spec_compiler.model import Model
from spec_compiler.shapes import TensorType
from spec_compiler.train_config import TrainConfig


def span(line: int) -> Span:
    return Span("graph.spec", line, 1, 5)


def node(kind: str, name: str, line: int, shares: str | None = None, **params) -> Node:
    return Node(kind, name, REGISTRY[kind].params(**params), span(line), shares=shares)


def graph_model(name: str, inputs, steps, outputs) -> Model:
    ir = ModelIR(name, tuple(inputs), tuple(steps), tuple(OutputSpec(o, span(1)) for o in outputs), TrainConfig(),
                 f"{name}.spec", "")
    return Model(infer(ir))


def image(name: str, line: int, size: int = 8) -> InputSpec:
    return InputSpec("image", TensorType((1, size, size)), span(line), name)


def siamese() -> Model:
    """Left and right images through one shared encoder; their codes concatenated, then a
    similarity in [0, 1]."""
    a = Step("a", ("left",), (node("flatten", "flatten_1", 3), node("dense", "enc", 3, units=4, activation="tanh")),
             span(3))
    b = Step("b", ("right",), (node("flatten", "flatten_2", 4),
                               node("dense", "enc_2", 4, shares="enc", units=4, activation="tanh")), span(4))
    merged = Step("similarity", ("a", "b"), (node("concat", "concat_1", 5),
                                             node("dense", "dense_1", 5, units=1, activation="sigmoid")), span(5))
    return graph_model("siamese_test", [image("left", 1), image("right", 2)], [a, b, merged], ["similarity"])


def two_head() -> Model:
    """One image, a shared trunk, a digit head (softmax) and a parity head (sigmoid)."""
    features = Step("features", ("input",), (node("flatten", "flatten_1", 2),
                                             node("dense", "dense_1", 2, units=16, activation="relu")), span(2))
    digit = Step("digit", ("features",), (node("dense", "dense_2", 3, units=10, activation="softmax"),), span(3))
    parity = Step("parity", ("features",), (node("dense", "dense_3", 4, units=1), node("sigmoid", "sigmoid_1", 4)),
                  span(4))
    return graph_model("two_head_test", [image("input", 1)], [features, digit, parity], ["digit", "parity"])

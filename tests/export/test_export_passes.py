"""Each graph rewrite of spec_compiler/export/passes.py on a small hand-made graph."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from spec_compiler.export.passes import ExplicitSamePadding, ExposeLogits, GemmToMatMul, shape_info

RNG = np.random.default_rng(0)


def model_of(nodes, inputs, outputs, initializers=(), opset=17) -> ir.Model:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def run(model: ir.Model, **feeds) -> list[np.ndarray]:
    session = ort.InferenceSession(ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def tensor(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


# --- ExplicitSamePadding -------------------------------------------------------------

def dilated_conv(auto_pad: str, dilation: int = 2, stride: int = 1, kernel: int = 3) -> tuple[ir.Model, np.ndarray]:
    weight = RNG.standard_normal((2, 1, kernel, kernel)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, dilations=[dilation, dilation],
                            strides=[stride, stride], kernel_shape=[kernel, kernel])
    return model_of([node], [tensor("x", 1, 1, 9, 9)], [tensor("y", None, None, None, None)],
                    [numpy_helper.from_array(weight, "w")]), weight


@pytest.mark.parametrize("kernel", [3, 4])
def test_dilated_same_convolution_gets_explicit_pads_as_pytorch_pads(kernel):
    model, weight = dilated_conv("SAME_UPPER", kernel=kernel)
    x = RNG.standard_normal((1, 1, 9, 9)).astype(np.float32)
    with pytest.raises(Exception, match="Dilation not supported"):
        run(model, x=x)  # why the pass exists
    assert ExplicitSamePadding()(model).modified
    conv = next(iter(model.graph))
    assert conv.attributes.get_string("auto_pad") == "NOTSET"
    total = 2 * (kernel - 1)
    assert list(conv.attributes.get_ints("pads")) == [total // 2] * 2 + [total - total // 2] * 2
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight), padding="same", dilation=2)
    assert np.allclose(run(model, x=x)[0], expected.numpy(), atol=1e-5)


def test_same_lower_puts_the_odd_pad_first():
    model, _ = dilated_conv("SAME_LOWER", kernel=4)
    ExplicitSamePadding()(model)
    assert list(next(iter(model.graph)).attributes.get_ints("pads")) == [3, 3, 3, 3]
    model, _ = dilated_conv("SAME_LOWER", dilation=3, kernel=2)
    ExplicitSamePadding()(model)
    assert list(next(iter(model.graph)).attributes.get_ints("pads")) == [2, 2, 1, 1]


@pytest.mark.parametrize("auto_pad, dilation, stride", [("SAME_UPPER", 1, 1), ("SAME_UPPER", 2, 2),
                                                        ("VALID", 2, 1)])
def test_other_convolutions_are_left_alone(auto_pad, dilation, stride):
    model, _ = dilated_conv(auto_pad, dilation=dilation, stride=stride)
    assert not ExplicitSamePadding()(model).modified
    assert next(iter(model.graph)).attributes.get_string("auto_pad") == auto_pad


# --- GemmToMatMul --------------------------------------------------------------------

def dense(trans_b: int, alpha: float = 1.0, bias: bool = True) -> ir.Model:
    weight = RNG.standard_normal((3, 4) if trans_b else (4, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(RNG.standard_normal(3).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("Gemm", inputs, ["h"], name="dense_1", transB=trans_b, alpha=alpha),
             helper.make_node("Relu", ["h"], ["output"])]
    return model_of(nodes, [tensor("x", "batch", 4)], [tensor("output", "batch", 3)], inits)


@pytest.mark.parametrize("trans_b, bias", [(1, True), (0, True), (1, False)])
def test_dense_gemm_becomes_matmul_and_add_with_the_same_output(trans_b, bias):
    model = dense(trans_b, bias=bias)
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    before = run(model, x=x)[0]
    assert GemmToMatMul()(model).modified
    ops = [node.op_type for node in model.graph]
    assert ops == (["MatMul", "Add", "Relu"] if bias else ["MatMul", "Relu"])
    assert set(model.graph.initializers) == ({"dense_1_matmul_weight", "b"} if bias else {"dense_1_matmul_weight"})
    assert np.allclose(run(model, x=x)[0], before, atol=1e-6)
    onnx.checker.check_model(ir.to_proto(model))


def test_gemm_as_the_graph_output_keeps_the_output_name():
    weight = numpy_helper.from_array(RNG.standard_normal((3, 4)).astype(np.float32), "w")
    model = model_of([helper.make_node("Gemm", ["x", "w"], ["output"], transB=1)], [tensor("x", "batch", 4)],
                     [tensor("output", "batch", 3)], [weight])
    GemmToMatMul()(model)
    assert [v.name for v in model.graph.outputs] == ["output"]
    assert [node.op_type for node in model.graph] == ["MatMul"]


def test_scaled_gemm_is_left_alone():
    model = dense(1, alpha=0.5)
    assert not GemmToMatMul()(model).modified
    assert [node.op_type for node in model.graph] == ["Gemm", "Relu"]


# --- ExposeLogits ------------------------------------------------------------------------

def classifier(*after: str, activation: str = "Softmax") -> ir.Model:
    weight = numpy_helper.from_array(RNG.standard_normal((3, 4)).astype(np.float32), "w")
    nodes = [helper.make_node("Gemm", ["x", "w"], ["logits"], transB=1),
             helper.make_node(activation, ["logits"], ["p0"])]
    shape = numpy_helper.from_array(np.array([-1, 3, 1], np.int64), "shape")
    for i, op in enumerate(after):
        inputs = [f"p{i}", "shape"] if op == "Reshape" else [f"p{i}"]
        nodes.append(helper.make_node(op, inputs, [f"p{i + 1}"]))
    output = helper.make_tensor_value_info(f"p{len(after)}", TensorProto.FLOAT, None)
    return model_of(nodes, [tensor("x", "batch", 4)], [output], [weight, shape])


@pytest.mark.parametrize("after", [(), ("Reshape",), ("Identity", "Reshape")])
def test_logits_of_the_final_activation_become_an_output(after):
    model = classifier(*after)
    expose = ExposeLogits("softmax")
    assert expose(model).modified and expose.exposed == "logits"
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    probabilities, logits = run(model, x=x)
    assert np.allclose(probabilities.reshape(2, 3), torch.softmax(torch.from_numpy(logits), 1).numpy(), atol=1e-6)


@pytest.mark.parametrize("after, activation, final", [(("Transpose",), "Softmax", "softmax"),
                                                      ((), "Softmax", "sigmoid"), ((), "Relu", "softmax")])
def test_no_logits_where_the_output_is_not_the_activation_reshaped(after, activation, final):
    model = classifier(*after, activation=activation)
    expose = ExposeLogits(final)
    assert not expose(model).modified and expose.exposed is None
    assert len(model.graph.outputs) == 1


# --- shape_info ----------------------------------------------------------------------------

def test_shape_info_describes_every_intermediate_tensor():
    model = shape_info(dense(1))
    hidden = next(v for node in model.graph for v in node.outputs if v.name == "h")
    assert [str(d) for d in hidden.shape] == ["batch", "3"] and hidden.dtype == ir.DataType.FLOAT
    proto = ir.to_proto(model)
    assert "h" in {v.name for v in proto.graph.value_info}

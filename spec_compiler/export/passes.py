"""Graph rewrites on the exported model, each a small onnx_ir pass with its own test
(tests/export/test_passes.py):

- ExplicitSamePadding: `pad=same` convolutions with dilation get explicit pads (ONNX
  Runtime refuses auto_pad SAME with dilation);
- GemmToMatMul: dense layers (Gemm with a constant weight) become MatMul + Add, which
  ONNX Runtime's dynamic int8 quantizer handles;
- ShareTransposedTables: a tied layer's weight (`tie=`), which the exporter folds into a
  transposed copy of the embedding table, becomes a Transpose of the table, so the file
  holds the table once;
- ExposeLogits: the input of the final softmax/sigmoid becomes an extra graph output, so
  verification compares logits;
- shape_info: onnx shape inference stores every intermediate tensor's type and shape
  (value_info), so viewers such as Netron show them.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes.common import RemoveUnusedNodesPass, ShapeInferencePass

# Ops that only reshape: element i of the output is element i of the input (in C order).
ORDER_PRESERVING = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
ACTIVATION_OPS = {"softmax": "Softmax", "sigmoid": "Sigmoid"}


class ExplicitSamePadding(ir.passes.InPlacePass):
    """Conv with auto_pad SAME_UPPER/SAME_LOWER, stride 1 and a dilation above 1: explicit pads.

    With stride 1 the total padding of an axis is dilation * (kernel - 1) whatever the input
    size; SAME_UPPER puts the odd one at the end (as PyTorch's padding="same"), SAME_LOWER
    at the start."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for node in ir.traversal.RecursiveGraphIterator(model.graph):
            if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
                continue
            auto_pad = node.attributes.get_string("auto_pad", "NOTSET")
            if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
                continue
            kernel = _kernel_shape(node)
            if kernel is None:
                continue
            dilations = node.attributes.get_ints("dilations", [1] * len(kernel))
            strides = node.attributes.get_ints("strides", [1] * len(kernel))
            if any(s != 1 for s in strides) or all(d == 1 for d in dilations):
                continue
            totals = [d * (k - 1) for d, k in zip(dilations, kernel)]
            if auto_pad == "SAME_UPPER":
                begins = [t // 2 for t in totals]
            else:
                begins = [t - t // 2 for t in totals]
            ends = [t - b for t, b in zip(totals, begins)]
            node.attributes["auto_pad"] = ir.AttrString("auto_pad", "NOTSET")
            node.attributes["pads"] = ir.AttrInt64s("pads", begins + ends)
            modified = True
        return ir.passes.PassResult(model, modified)


def _kernel_shape(node: ir.Node) -> list[int] | None:
    kernel = node.attributes.get_ints("kernel_shape")
    if kernel is not None:
        return list(kernel)
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    if weight is None or weight.const_value is None:
        return None
    return list(weight.const_value.shape[2:])


class GemmToMatMul(ir.passes.InPlacePass):
    """Gemm(A, B, C) with a constant B, no transA, alpha = beta = 1: MatMul(A, B') + C."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        rewritten = 0
        for node in list(graph):
            weight = node.inputs[1] if node.op_type == "Gemm" and len(node.inputs) > 1 else None
            if (weight is None or weight.const_value is None or node.attributes.get_int("transA", 0)
                    or node.attributes.get_float("alpha", 1.0) != 1.0
                    or node.attributes.get_float("beta", 1.0) != 1.0):
                continue
            array = weight.const_value.numpy()
            if node.attributes.get_int("transB", 0):
                array = array.T
            name = f"{node.name or node.outputs[0].name}_matmul_weight"
            matmul_weight = ir.Value(name=name, shape=ir.Shape(array.shape), type=weight.type,
                                     const_value=ir.tensor(np.ascontiguousarray(array), name=name))
            graph.register_initializer(matmul_weight)
            bias = node.inputs[2] if len(node.inputs) > 2 else None
            matmul = ir.node("MatMul", [node.inputs[0], matmul_weight], name=f"{node.name}_MatMul")
            new_nodes = [matmul]
            result = matmul.outputs[0]
            if bias is not None:
                add = ir.node("Add", [result, bias], name=f"{node.name}_Add")
                new_nodes.append(add)
                result = add.outputs[0]
            graph.insert_before(node, new_nodes)
            old = node.outputs[0]
            name, result.type, result.shape = old.name, old.type, old.shape
            old.replace_all_uses_with(result, replace_graph_outputs=True)
            graph.remove(node, safe=True)
            result.name = name
            if bias is not None:
                matmul.outputs[0].name = f"{name}_matmul"
            rewritten += 1
        if rewritten:
            RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, rewritten > 0)


class ShareTransposedTables(ir.passes.InPlacePass):
    """A 2-D initializer equal to the transpose of a lookup table becomes Transpose(table).

    Tied weights (spec_compiler/ties.py) are one Parameter, used by Gather as a table and
    by MatMul as its transpose; torch.onnx folds the transpose into a second constant.
    Replacing a constant by the transpose of an equal one never changes a result."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        tables = {}  # the tables a lookup (Gather) reads, by the bytes of their transposes
        for value in graph.initializers.values():
            array = _matrix(value)
            if array is not None and any(user.op_type == "Gather" for user, _ in value.uses()):
                tables.setdefault((array.T.shape, array.dtype.str, np.ascontiguousarray(array.T).tobytes()), value)
        shared = 0
        for value in list(graph.initializers.values()):
            array = _matrix(value)
            table = None if array is None else tables.get((array.shape, array.dtype.str, array.tobytes()))
            if table is None or any(user.op_type == "Gather" for user, _ in value.uses()):
                continue
            transpose = ir.node("Transpose", [table], attributes={"perm": [1, 0]}, name=f"{value.name}_from_{table.name}")
            graph.insert_before(next(iter(graph)), transpose)
            result = transpose.outputs[0]
            result.name, result.type, result.shape = f"{table.name}_transposed", value.type, value.shape
            value.replace_all_uses_with(result)
            graph.initializers.pop(value.name)
            shared += 1
        return ir.passes.PassResult(model, shared > 0)


def _matrix(value: ir.Value) -> np.ndarray | None:
    """A 2-D constant's array (None for anything else)."""
    if value.const_value is None or value.shape is None or len(value.shape) != 2:
        return None
    return value.const_value.numpy()


class ExposeLogits(ir.passes.InPlacePass):
    """Make the values entering the final activation a second graph output.

    From the graph's first output, walk back through ops that only reshape to the node
    that computes it; when that is the model's final softmax/sigmoid, its input is the
    logits tensor (in the same element order as the output). `exposed` is then its name;
    None when the graph ends otherwise (a transpose after the activation, another op)."""

    def __init__(self, activation: str):
        super().__init__()
        self.activation = activation
        self.exposed: str | None = None

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self.exposed = None
        value = model.graph.outputs[0]
        node = value.producer()
        while node is not None and node.op_type in ORDER_PRESERVING and node.inputs and node.inputs[0] is not None:
            node = node.inputs[0].producer()
        if node is None or node.op_type != ACTIVATION_OPS.get(self.activation) or node.inputs[0] is None:
            return ir.passes.PassResult(model, False)
        logits = node.inputs[0]
        if logits.is_graph_output() or logits.is_graph_input():
            return ir.passes.PassResult(model, False)
        model.graph.outputs.append(logits)
        self.exposed = logits.name
        return ir.passes.PassResult(model, True)


def shape_info(model: ir.Model) -> ir.Model:
    """Store the type and shape of every tensor onnx shape inference can work out."""
    return ShapeInferencePass(strict_mode=False)(model).model


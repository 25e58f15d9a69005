"""Export parity (issue 9): logits with absolute and relative tolerance, inf and NaN at the
same places, ONNX Runtime's own errors as spec errors; shape information in the file."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
import torch
from click.testing import CliRunner

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.errors import SpecError
from spec_compiler.export import pipeline, verify
from spec_compiler.export.passes import ExposeLogits


def spec(tmp_path, text: str, name: str = "m.spec"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the comparison rule -----------------------------------------------------------

def test_logits_show_what_probabilities_of_many_classes_hide():
    logits = np.random.default_rng(0).normal(0, 0.1, (2, 1000)).astype(np.float32)
    off = logits * 1.05  # a 5% error in every logit
    probabilities = torch.softmax(torch.from_numpy(logits), 1).numpy()
    off_probabilities = torch.softmax(torch.from_numpy(off), 1).numpy()
    assert np.abs(probabilities - off_probabilities).max() < 1e-4  # all about 0.001: an absolute check passes
    assert not verify.compare(logits, off).agree


def test_relative_and_absolute_tolerance():
    big = np.array([[1000.0, -2000.0]], np.float32)
    assert verify.compare(big, big + np.float32(0.5)).agree  # 5e-4 relative
    assert not verify.compare(big, big * np.float32(1.01)).agree
    small = np.array([[1e-3, 0.0]], np.float32)
    assert verify.compare(small, small + np.float32(5e-5)).agree  # within the absolute 1e-4
    assert not verify.compare(small, small + np.float32(2e-4)).agree
    assert not verify.compare(small, small[:, :1]).agree  # shapes differ


def test_inf_and_nan_agree_only_at_the_same_places():
    a = np.array([[-np.inf, 1.0, np.nan, np.inf]], np.float32)
    same = verify.compare(a, a.copy())
    assert same.agree and same.nonfinite == 3 and same.max_abs == 0.0
    assert not verify.compare(a, np.array([[-np.inf, 1.0, 0.0, np.inf]], np.float32)).agree  # NaN vs number
    assert not verify.compare(a, np.array([[np.inf, 1.0, np.nan, np.inf]], np.float32)).agree  # sign of inf
    assert not verify.compare(a, np.array([[-np.inf, 1.1, np.nan, np.inf]], np.float32)).agree  # finite part


# --- exports ---------------------------------------------------------------------------

def test_outputs_with_inf_and_nan_export_when_both_runtimes_agree(tmp_path):
    model = spec_compiler.load(spec(tmp_path, "model logs\ninput vector 8\ndense 16 relu\nlog\n"))
    report = model.export(tmp_path / "m.onnx")
    assert all(c.nonfinite > 0 for c in report.checks)  # log(0) = -inf on random inputs
    assert "inf/NaN alike" in report.render()
    classifier = spec_compiler.load(spec(tmp_path, "model c\ninput vector 8\ndense 4 relu\nlog\ndense 2 softmax\n",
                                         "c.spec"))
    assert classifier.export(tmp_path / "c.onnx").checks[0].compared == "logits and output"


def test_classifiers_are_compared_on_logits_too(tmp_path, monkeypatch):
    model = spec_compiler.load(spec(tmp_path, "model wide\ninput vector 8\ndense 1000 softmax\n"))
    assert {c.compared for c in model.export(tmp_path / "m.onnx").checks} == {"logits and output"}
    real = verify.torch_run

    def off_by_five_percent(p, x):
        output, logits = real(p, x)
        return output, logits * np.float32(1.05)  # the output is left as it is: only logits can fail

    monkeypatch.setattr(verify, "torch_run", off_by_five_percent)
    with pytest.raises(SpecError, match=r"ONNX Runtime disagrees with PyTorch on random inputs .*logits and output"):
        model.export(tmp_path / "n.onnx")
    assert not (tmp_path / "n.onnx").exists()


def test_logits_graph_of_its_own_where_the_output_cannot_be_split(tmp_path):
    """A softmax of the input itself: the logits are the graph's input, no tensor to add as an
    output. (Below opset 13, no longer exported, a softmax over channels was another case:
    Transpose, Softmax, Transpose; the pass's own tests keep that one.)"""
    model = spec_compiler.load(spec(tmp_path, "model s\ninput vector 4\nsoftmax\n"))
    report = model.export(tmp_path / "m.onnx", opset=13)
    graph = ir.from_proto(onnx.load(str(tmp_path / "m.onnx")))
    assert [node.op_type for node in graph.graph] == ["Softmax"]
    assert ExposeLogits("softmax")(graph).modified is False
    assert {c.compared for c in report.checks} == {"logits and output"}


def test_a_softmax_over_channels_is_one_node_from_opset_13(tmp_path):
    model = spec_compiler.load(spec(tmp_path, "model seg\ninput image 3x6x6\nconv 4x1x1\nsoftmax 0\n"))
    report = model.export(tmp_path / "m.onnx", opset=13)
    graph = ir.from_proto(onnx.load(str(tmp_path / "m.onnx")))
    assert [node.op_type for node in graph.graph][-1] == "Softmax"
    assert {c.compared for c in report.checks} == {"logits and output"}


def test_dilated_same_convolution_exports(tmp_path):
    text = "model d\ninput image 1x16x16\nconv 4x3x3 dilation=2 pad=same relu\nflatten\ndense 3 softmax\n"
    report = spec_compiler.load(spec(tmp_path, text)).export(tmp_path / "m.onnx")
    assert report.max_abs_diff <= 1e-4


def test_onnx_runtime_errors_name_the_layer(tmp_path, monkeypatch):
    class Unchanged:
        def __call__(self, model):
            return None

    monkeypatch.setattr(pipeline, "ExplicitSamePadding", Unchanged)  # ONNX Runtime refuses the graph then
    path = spec(tmp_path, "model d\ninput image 1x16x16\nconv 4x3x3 dilation=2 pad=same relu\nflatten\ndense 3 softmax\n")
    result = CliRunner().invoke(main, ["export", str(path), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1, result.output
    assert f"{path}:3:1: error: ONNX Runtime cannot run layer `conv2d` (conv2d_1) of the exported graph" in result.output
    assert "Dilation not supported" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_reshape_then_lstm_is_exported_or_refused_cleanly(tmp_path):
    path = spec(tmp_path, "model r\ninput vector 12\nreshape [-1, 4]\nlstm 8\ndense 2 softmax\n")
    result = CliRunner().invoke(main, ["export", str(path), "-o", str(tmp_path / "m.onnx")])
    assert "Traceback" not in result.output and "[ONNXRuntimeError]" not in result.output
    if result.exit_code != 0:
        assert result.exit_code == 1
        assert f"{path}:4:1: error: ONNX Runtime cannot run layer `lstm` (lstm_1)" in result.output


def test_every_intermediate_tensor_has_a_shape(tmp_path):
    text = "model s\ninput tokens ? vocab=50\nembedding 8\nlstm 6 return_sequences=true\ndense 3 softmax\n"
    spec_compiler.load(spec(tmp_path, text)).export(tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    described = {v.name: v for v in proto.graph.value_info}
    outputs = {o.name for o in proto.graph.output}
    intermediate = [name for node in proto.graph.node for name in node.output if name and name not in outputs]
    assert intermediate and all(name in described for name in intermediate)
    assert all(described[name].type.tensor_type.HasField("shape") for name in intermediate)

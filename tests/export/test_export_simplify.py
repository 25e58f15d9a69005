"""`--simplify` (issue 13): onnxslim's simplified graph is kept only when it verifies against
PyTorch like the export itself; otherwise the exported graph is written and the report
says why. The report gives nodes, size and batch-1 latency before and after."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxslim
import torch
from click.testing import CliRunner

import spec_compiler
from spec_compiler import runtime
from spec_compiler.cli import main
from spec_compiler.export import external

# The TorchScript exporter writes the LSTM's initial states and shapes as Constant nodes,
# which onnxslim folds into initializers.
TEXT = "model t\ninput tokens 12 vocab=50\nembedding 8\nlstm 6\ndense 3 softmax\n"


def spec(tmp_path: Path) -> Path:
    path = tmp_path / "t.spec"
    path.write_text(TEXT)
    return path


def node_count(path: Path) -> int:
    return len(onnx.load(str(path), load_external_data=False).graph.node)


def shapeless_intermediates(path: Path) -> list[str]:
    proto = onnx.load(str(path), load_external_data=False)
    described = {v.name for v in proto.graph.value_info if v.type.tensor_type.HasField("shape")}
    outputs = {o.name for o in proto.graph.output}
    return [name for node in proto.graph.node for name in node.output
            if name and name not in outputs and name not in described]


def agrees_with_torch(path: Path, spec_path: Path) -> bool:
    x = np.random.default_rng(0).integers(0, 50, (4, 12))
    with torch.no_grad():
        expected = spec_compiler.load(spec_path).build(seed=0).eval()(torch.from_numpy(x)).numpy()
    return bool(np.allclose(runtime.load(path).predict(x), expected, rtol=1e-3, atol=1e-4))


def test_a_simplified_graph_that_verifies_is_kept(tmp_path):
    out = tmp_path / "t.onnx"
    result = CliRunner().invoke(main, ["export", str(spec(tmp_path)), "-o", str(out), "--simplify", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)["simplified"]
    assert s["kept"] is True and s["reason"] is None
    assert s["nodes_after"] < s["nodes_before"] and node_count(out) == s["nodes_after"]
    assert s["bytes_after"] == out.stat().st_size and s["bytes_before"] > 0
    assert s["latency_before_ms"] > 0 and s["latency_after_ms"] > 0
    assert s["latency_ratio"] == s["latency_after_ms"] / s["latency_before_ms"]
    assert {c["what"] for c in s["checks"]} == {"random"} and all(c["max_abs_diff"] <= 1e-4 for c in s["checks"])
    assert not any(n.op_type == "Constant" for n in onnx.load(str(out)).graph.node)
    assert not shapeless_intermediates(out), "the simplified file keeps the shape of every intermediate tensor"
    assert agrees_with_torch(out, tmp_path / "t.spec")
    text = CliRunner().invoke(main, ["export", str(tmp_path / "t.spec"), "-o", str(out), "--simplify"])
    assert "simplification (onnxslim): kept" in text.output


def test_a_simplified_graph_that_does_not_verify_is_not_written(tmp_path, monkeypatch):
    real_slim = onnxslim.slim

    def off_by_ten_percent(model, *args, **kwargs):
        slim = real_slim(model, *args, **kwargs)
        weight = next(t for t in slim.graph.initializer if t.name.endswith("dense_1.weight"))
        weight.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(weight) * np.float32(1.1), weight.name))
        return slim

    monkeypatch.setattr(onnxslim, "slim", off_by_ten_percent)
    out = tmp_path / "t.onnx"
    report = spec_compiler.load(spec(tmp_path)).export(out, simplify=True)
    s = report.simplified
    assert s["kept"] is False and s["reason"].startswith("the simplified graph does not verify: ONNX Runtime disagrees")
    assert node_count(out) == s["nodes_before"] and agrees_with_torch(out, tmp_path / "t.spec")
    assert "not kept, the exported graph is written" in report.render()


def test_an_onnxslim_failure_is_reported_and_the_export_goes_on(tmp_path, monkeypatch):
    def broken(model, *args, **kwargs):
        raise RuntimeError("slim broke (test)")

    monkeypatch.setattr(onnxslim, "slim", broken)
    report = spec_compiler.load(spec(tmp_path)).export(tmp_path / "t.onnx", simplify=True)
    assert report.simplified["kept"] is False and report.simplified["reason"] == "onnxslim failed: slim broke (test)"
    assert agrees_with_torch(tmp_path / "t.onnx", tmp_path / "t.spec")


def test_simplified_with_external_data(tmp_path):
    out = tmp_path / "t.onnx"
    report = spec_compiler.load(spec(tmp_path)).export(out, simplify=True, external_data=True)
    assert report.simplified["kept"] is True and node_count(out) == report.simplified["nodes_after"]
    assert report.external_data["bytes"] == (tmp_path / "t.onnx.data").stat().st_size
    assert not shapeless_intermediates(out)
    assert agrees_with_torch(out, tmp_path / "t.spec")


def test_weights_over_the_protobuf_limit_are_not_simplified(tmp_path, monkeypatch):
    monkeypatch.setattr(external, "PROTOBUF_LIMIT", 1000)
    out = tmp_path / "t.onnx"
    report = spec_compiler.load(spec(tmp_path)).export(out, simplify=True, external_data=True)
    assert report.simplified["kept"] is False and "do not fit in one ONNX message" in report.simplified["reason"]
    assert node_count(out) == report.simplified["nodes_before"]
    assert agrees_with_torch(out, tmp_path / "t.spec")


def test_no_simplified_entry_without_the_option(tmp_path):
    assert spec_compiler.load(spec(tmp_path)).export(tmp_path / "t.onnx").simplified is None

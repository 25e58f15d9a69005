"""A graph spec exports through the chain's pipeline and gets what a chain gets: --simplify
kept only when it verifies, --quantize int8 (dynamic for dense graphs, static QDQ
calibrated on the run's data for convolutional ones), every supported opset verified, and
parity on the run's validation rows after training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.export.exporter import MIN_OPSET, max_opset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lowering"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "zoo"))
from graph_models import siamese, two_head  # noqa: E402
from test_bert import small_source  # noqa: E402

TWO_HEAD = Path(__file__).resolve().parents[2] / "specs" / "two_head.spec"


def outputs_of(path: Path) -> list[str]:
    return [o.name for o in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_outputs()]


@pytest.mark.parametrize("build", [siamese, two_head])
def test_simplify_keeps_a_graph_that_verifies(tmp_path, build):
    report = build().export(tmp_path / "m.onnx", simplify=True)
    assert report.simplified["kept"], report.simplified["reason"]
    assert report.simplified["nodes_after"] <= report.simplified["nodes_before"]
    assert report.simplified["checks"] and all(c["max_abs_diff"] <= 1e-3 for c in report.simplified["checks"])
    assert outputs_of(tmp_path / "m.onnx") == [o["name"] for o in report.outputs]


def test_int8_force_quantizes_a_dense_graph_dynamically(tmp_path):
    report = two_head().export(tmp_path / "q.onnx", quantize="int8-force")
    q = report.quantization
    assert q["kept"] == "int8" and q["method"].startswith("dynamic")
    assert q["agreement"] is not None and q["mean_abs_diff"] <= 0.05
    assert outputs_of(tmp_path / "q.onnx") == ["digit", "parity"]
    siamese_report = siamese().export(tmp_path / "s.onnx", quantize="int8-force")
    assert siamese_report.quantization["kept"] == "int8"
    ops = {node.op_type for node in onnx.load(str(tmp_path / "s.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops, ops
    session = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    zeros = np.zeros((2, 1, 8, 8), np.float32)
    (similarity,) = session.run(None, {"left": zeros, "right": zeros})
    assert similarity.shape == (2, 1)


@pytest.mark.parametrize("opset", range(MIN_OPSET, max_opset() + 1))
def test_a_graph_verifies_at_every_supported_opset(tmp_path, opset):
    report = two_head().export(tmp_path / "m.onnx", opset=opset)
    assert report.opset == opset and report.max_abs_diff <= 1e-4
    assert report.converted_from == (20 if opset > 20 and report.exporter == "torchscript" else None)


def test_the_dynamo_exporter_takes_a_graph_of_two_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECC_ONNX_EXPORTER", "dynamo")
    report = siamese().export(tmp_path / "m.onnx", opset=18)
    assert report.exporter == "dynamo" and report.max_abs_diff <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[0]) for i in session.get_inputs()] == [("left", "batch"), ("right", "batch")]


def test_a_small_bert_exports_its_two_token_inputs_simplified(tmp_path):
    model = spec_compiler.compile_source(small_source(), "bert_small.spec")
    report = model.export(tmp_path / "bert.onnx", simplify=True, opset=18)
    assert [i["name"] for i in report.inputs] == ["ids", "types"]
    assert report.max_abs_diff <= 1e-4 and report.simplified["nodes_before"] > 0
    assert outputs_of(tmp_path / "bert.onnx") == ["hidden", "pooled"]


@pytest.fixture(scope="module")
def trained_two_head(tmp_path_factory) -> Path:
    """specs/two_head.spec trained one epoch on 200 of the bundled digits (a conv graph)."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("two_head")
    bunch = load_digits()
    images = (bunch.images[:200] / 16.0).astype(np.float32)[:, None]
    labels = bunch.target[:200].astype(np.int64)
    np.savez(folder / "digits.npz", x=images, y_digit=labels, y_parity=(labels % 2).astype(np.float32))
    result = CliRunner().invoke(main, ["train", str(TWO_HEAD), "--data", str(folder / "digits.npz"), "--set",
                                       "train.epochs=1", "--out", str(folder / "run")])
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_a_trained_graph_is_checked_on_its_validation_rows(trained_two_head, tmp_path):
    model = spec_compiler.load(TWO_HEAD)
    report = model.export(tmp_path / "m.onnx", weights=trained_two_head)
    assert [c.what for c in report.checks][-1] == "validation"
    assert report.validation["samples"] == 40 and "validation split" in report.validation["source"]
    assert report.validation["accuracy_torch"] == report.validation["accuracy_onnx"]
    assert "digit logits" in report.checks[-1].compared and "parity logits" in report.checks[-1].compared


def test_a_conv_graph_quantizes_statically_on_the_run_s_data(trained_two_head, tmp_path):
    result = CliRunner().invoke(main, ["export", str(TWO_HEAD), "--weights", str(trained_two_head), "-o",
                                       str(tmp_path / "q.onnx"), "--quantize", "int8-force", "--simplify", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    q = report["quantization"]
    assert q["kept"] == "int8" and q["method"].startswith("static QDQ")
    assert "160 samples of the run's training data" in q["calibration"]
    assert q["agreement_on"] == "40 validation samples"
    assert report["simplified"]["kept"]
    assert outputs_of(tmp_path / "q.onnx") == ["digit", "parity"]

"""`--opset` from 13 to the newest opset the installed onnxruntime runs (issue 13): LeNet-5
and the LSTM classifier export and verify at every one, with the shape of every
intermediate tensor in the file. Untrained weights; verification as every export does it
(random inputs at two batch sizes, logits and output)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

import spec_compiler
from spec_compiler import runtime
from spec_compiler.cli import main
from spec_compiler.export import exporter

ROOT = Path(__file__).resolve().parents[2]
OPSETS = list(range(exporter.MIN_OPSET, exporter.max_opset() + 1))
MODELS = {}


def loaded(stem: str):
    if stem not in MODELS:
        MODELS[stem] = spec_compiler.load(ROOT / f"specs/{stem}.spec")
    return MODELS[stem]


def shapeless_intermediates(proto: onnx.ModelProto) -> list[str]:
    described = {v.name for v in proto.graph.value_info if v.type.tensor_type.HasField("shape")}
    outputs = {o.name for o in proto.graph.output}
    return [name for node in proto.graph.node for name in node.output
            if name and name not in outputs and name not in described]


def test_the_range_reaches_past_the_torchscript_exporter():
    assert exporter.MIN_OPSET == 13
    assert exporter.max_opset() > exporter.TORCHSCRIPT_MAX_OPSET  # onnxruntime 1.17 and later run opset 21+


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("stem", ["lenet5", "spam_lstm"])
def test_every_opset_exports_and_verifies(stem, opset, tmp_path):
    model = loaded(stem)
    out = tmp_path / f"{stem}.onnx"
    report = model.export(out, opset=opset)
    assert report.opset == opset and report.max_abs_diff <= 1e-4
    assert {c.compared for c in report.checks} == {"logits and output"}
    assert report.converted_from == (exporter.TORCHSCRIPT_MAX_OPSET if opset > exporter.TORCHSCRIPT_MAX_OPSET
                                     else None)
    proto = onnx.load(str(out))
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {opset}
    onnx.checker.check_model(proto, full_check=True)
    assert not shapeless_intermediates(proto), "every intermediate tensor carries its shape (value_info)"
    x = (np.random.default_rng(opset).integers(0, 1000, (4, 150)) if stem == "spam_lstm"
         else np.random.default_rng(opset).standard_normal((4, 1, 32, 32)).astype(np.float32))
    with torch.no_grad():
        expected = model.build(seed=0).eval()(torch.from_numpy(x)).numpy()  # the export builds with seed 0
    assert np.allclose(runtime.load(out).predict(x), expected, rtol=1e-3, atol=1e-4)


def test_the_dynamo_exporter_writes_the_newest_opset(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECC_ONNX_EXPORTER", "dynamo")
    newest = exporter.max_opset()
    report = loaded("lenet5").export(tmp_path / "m.onnx", opset=newest)
    assert report.exporter == "dynamo" and report.opset == newest and report.converted_from is None
    assert report.max_abs_diff <= 1e-4
    assert not shapeless_intermediates(onnx.load(str(tmp_path / "m.onnx")))


def test_which_exporters_serve_an_opset(monkeypatch):
    monkeypatch.delenv("SPECC_ONNX_EXPORTER", raising=False)
    assert exporter.exporters(13, explicit=True) == ("torchscript",)  # dynamo writes 18 and up
    assert exporter.exporters(17, explicit=False) == ("torchscript", "dynamo")  # dynamo's fallback: opset 18
    assert exporter.exporters(exporter.max_opset(), explicit=True) == ("torchscript", "dynamo")
    monkeypatch.setenv("SPECC_ONNX_EXPORTER", "dynamo")
    assert exporter.exporters(13, explicit=True) == ()


@pytest.mark.parametrize("opset", [exporter.MIN_OPSET - 1, exporter.max_opset() + 1])
def test_opsets_outside_the_range_are_usage_errors(opset, tmp_path):
    result = CliRunner().invoke(main, ["export", str(ROOT / "specs/lenet5.spec"), "-o", str(tmp_path / "m.onnx"),
                                       "--opset", str(opset)])
    assert result.exit_code == 2
    assert f"specc exports opsets 13 to {exporter.max_opset()}" in result.output
    assert list(tmp_path.iterdir()) == []

"""Export of graph specs: several ONNX inputs and outputs named from the spec, verified
like a chain's (every output, and each output's logits), with the specc metadata an app
reads (`inputs`, `outputs`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from spec_compiler.errors import UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lowering"))
from graph_models import siamese, two_head  # noqa: E402


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_siamese_file_takes_both_named_inputs_and_agrees_with_torch(tmp_path):
    model = siamese()
    report = model.export(tmp_path / "siamese.onnx")
    assert report.max_abs_diff <= 1e-4 and len(report.checks) == 2
    assert [i["name"] for i in report.inputs] == ["left", "right"] and report.outputs[0]["name"] == "similarity"
    assert "similarity logits" in report.checks[0].compared  # the logits were compared too
    s = session(tmp_path / "siamese.onnx")
    assert [i.name for i in s.get_inputs()] == ["left", "right"]
    assert [o.name for o in s.get_outputs()] == ["similarity"]
    assert [list(i.shape)[1:] for i in s.get_inputs()] == [[1, 8, 8]] * 2
    left, right = (np.random.default_rng(seed).standard_normal((4, 1, 8, 8)).astype(np.float32) for seed in (0, 1))
    (got,) = s.run(None, {"left": left, "right": right})
    module = model.build(seed=0).eval()
    with torch.no_grad():
        expected = module(torch.from_numpy(left), torch.from_numpy(right)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_two_outputs_come_out_in_output_order_with_their_metadata(tmp_path):
    report = two_head().export(tmp_path / "two_head.onnx")
    assert report.max_abs_diff <= 1e-4
    s = session(tmp_path / "two_head.onnx")
    assert [o.name for o in s.get_outputs()] == ["digit", "parity"]
    meta = s.get_modelmeta().custom_metadata_map
    assert json.loads(meta["specc.outputs"]) == [
        {"name": "digit", "shape": [10], "activation": "softmax"},
        {"name": "parity", "shape": [1], "activation": "sigmoid"}]
    assert json.loads(meta["specc.inputs"])[0]["name"] == "input"
    digit, parity = s.run(None, {"input": np.zeros((2, 1, 8, 8), np.float32)})
    assert digit.shape == (2, 10) and parity.shape == (2, 1)
    np.testing.assert_allclose(digit.sum(axis=1), 1.0, rtol=1e-5)
    rendered = report.render()
    assert "output `digit`: batch x 10" in rendered and "output `parity`: batch x 1" in rendered


def test_a_chain_report_keeps_its_keys(tmp_path):
    from spec_compiler import compile_source

    report = compile_source("input vector 4\ndense 3 softmax\n", "chain.spec").export(tmp_path / "chain.onnx")
    assert "inputs" not in report.to_dict() and "outputs" not in report.to_dict()


def test_quantizing_a_graph_is_a_usage_error_for_now(tmp_path):
    with pytest.raises(UsageError, match="--quantize: not yet for a model with several inputs or outputs"):
        two_head().export(tmp_path / "q.onnx", quantize="int8")
    assert not (tmp_path / "q.onnx").exists()


def test_runtime_takes_inputs_by_name_and_gives_outputs_by_name(tmp_path):
    from spec_compiler import runtime

    siamese().export(tmp_path / "siamese.onnx")
    two_head().export(tmp_path / "two_head.onnx")
    pair = runtime.load(tmp_path / "siamese.onnx")
    assert pair.input_names == ["left", "right"] and pair.output_names == ["similarity"]
    zeros = np.zeros((3, 1, 8, 8))
    assert pair.predict({"left": zeros, "right": zeros}).shape == (3, 1)  # one output: the array
    with pytest.raises(runtime.ModelInputError, match=r"takes 2 inputs \(left, right\): pass a dict"):
        pair.predict(zeros)
    with pytest.raises(runtime.ModelInputError, match="missing right; unknown rigth"):
        pair.predict({"left": zeros, "rigth": zeros})
    with pytest.raises(runtime.ModelInputError, match="same number of samples"):
        pair.predict({"left": zeros, "right": zeros[:2]})
    heads = runtime.load(tmp_path / "two_head.onnx").predict(zeros[0])  # one input: an array, one sample
    assert list(heads) == ["digit", "parity"] and heads["digit"].shape == (1, 10)


def test_predict_reads_an_npz_of_named_inputs_and_prints_each_output(tmp_path):
    from click.testing import CliRunner

    from spec_compiler.cli import main

    siamese().export(tmp_path / "siamese.onnx")
    two_head().export(tmp_path / "two_head.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "pair.npz", left=rng.standard_normal((2, 1, 8, 8)).astype(np.float32),
             right=rng.standard_normal((2, 1, 8, 8)).astype(np.float32))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "siamese.onnx"), str(tmp_path / "pair.npz"),
                                       "--json"])
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)["predictions"]
    assert [p["input"] for p in predictions] == ["pair.npz[0]", "pair.npz[1]"]
    assert [o["name"] for o in predictions[0]["outputs"]] == ["similarity"]
    np.save(tmp_path / "one.npy", rng.standard_normal((1, 8, 8)).astype(np.float32))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "two_head.onnx"), str(tmp_path / "one.npy")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == ["one.npy:", "  digit:"] and "  parity:" in result.output
    np.savez(tmp_path / "left_only.npz", left=np.zeros((1, 1, 8, 8), np.float32))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "siamese.onnx"), str(tmp_path / "left_only.npz")])
    assert result.exit_code == 2 and "missing right" in result.output

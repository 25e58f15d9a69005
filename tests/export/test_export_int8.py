"""`--quantize int8` writes the int8 model only where it is faster than fp32 at batch 1;
where it is not, the verified fp32 model is written and the report says why.
`--quantize int8-force` writes int8 whatever its speed. The decision is tested with
injected latencies (no timing noise); LeNet-5, whose int8 form runs about 2.5x slower
than fp32 on x86 CPUs (bench/int8.py), is also measured for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

import spec_compiler
from spec_compiler.cli import main
from spec_compiler.errors import UsageError
from spec_compiler.export import quantize

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "specs" / "lenet5.spec"
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}


def quantized(path: Path) -> bool:
    return any(node.op_type in QUANTIZED_OPS for node in onnx.load(str(path)).graph.node)


@pytest.mark.parametrize(("fp32_ms", "int8_ms", "forced", "kept"), [
    (1.0, 0.5, False, "int8"),
    (1.0, 0.5, True, "int8"),
    (1.0, 2.5, False, "fp32"),
    (1.0, 1.0, False, "fp32"),  # a tie is not faster
    (1.0, 2.5, True, "int8"),
])
def test_int8_is_kept_only_where_faster_unless_forced(fp32_ms, int8_ms, forced, kept):
    form, reason = quantize.kept_form(fp32_ms, int8_ms, forced)
    assert form == kept
    assert f"{int8_ms / fp32_ms:.2f}x the fp32 latency" in reason
    if form == "fp32":
        assert "int8-force" in reason


@pytest.fixture
def latencies(monkeypatch):
    """Replace the timing of fp32 and int8 by the figures a test sets."""
    figures = {"fp32": 1.0, "int8": 1.0}
    monkeypatch.setattr(quantize, "interleaved_latency", lambda sessions, name, x: [figures["fp32"], figures["int8"]])
    return figures


@pytest.mark.parametrize(("option", "int8_ms", "kept"), [
    ("int8", 0.4, "int8"), ("int8", 2.5, "fp32"), ("int8-force", 2.5, "int8")])
def test_the_file_holds_the_kept_model(tmp_path, latencies, option, int8_ms, kept):
    latencies["int8"] = int8_ms
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["export", str(LENET), "-o", str(out), "--quantize", option, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    q = report["quantization"]
    assert q["kept"] == kept and q["slower_than_fp32"] == (int8_ms > 1.0)
    assert q["fp32_latency_ms"] == 1.0 and q["int8_latency_ms"] == int8_ms
    assert quantized(out) == (kept == "int8")
    assert report["size_bytes"] == out.stat().st_size
    assert (out.stat().st_size < q["fp32_bytes"] / 2) == (kept == "int8")


def test_the_report_says_fp32_was_kept_and_why(tmp_path, latencies):
    latencies["int8"] = 2.5
    report = spec_compiler.load(LENET).export(tmp_path / "m.onnx", quantize="int8")
    text = report.render()
    assert "written: fp32: int8 is not faster (2.50x the fp32 latency at batch 1)" in text
    assert "--quantize int8-force writes the int8 model anyway" in text


def test_lenet5_int8_is_slower_so_fp32_is_kept_unless_forced(tmp_path):
    """Measured, not injected: LeNet-5's int8 form is about 2.5x slower at batch 1."""
    kept = spec_compiler.load(LENET).export(tmp_path / "kept.onnx", quantize="int8").quantization
    assert kept["slower_than_fp32"] and kept["kept"] == "fp32" and not quantized(tmp_path / "kept.onnx")
    forced = spec_compiler.load(LENET).export(tmp_path / "forced.onnx", quantize="int8-force").quantization
    assert forced["kept"] == "int8" and quantized(tmp_path / "forced.onnx")


def test_an_unknown_quantize_value_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["export", str(LENET), "-o", str(tmp_path / "m.onnx"), "--quantize", "int4"])
    assert result.exit_code == 2 and "int8-force" in result.output
    with pytest.raises(UsageError, match="one of int8, int8-force"):
        spec_compiler.load(LENET).export(tmp_path / "m.onnx", quantize="int4")

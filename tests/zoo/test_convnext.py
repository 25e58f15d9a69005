"""specs/convnext_tiny.spec is torchvision's convnext_tiny: the same 28,589,128
parameters, and the same logits as a plain-PyTorch ConvNeXt (tests/zoo/reference_convnext.py)
given the same weights. A small ConvNeXt of the same blocks also exports to ONNX with parity
in the default suite (the full model's export runs with SPECC_SLOW=1, tests/test_export.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from reference_convnext import ConvNeXt, convnext_tiny
from tf_checks import assert_same_logits, copy_into_reference, randomize

import spec_compiler
from spec_compiler import compile_source

SPEC = Path(__file__).resolve().parents[2] / "specs" / "convnext_tiny.spec"

SMALL = """\
model convnext_small_test
input image 3x32x32
block cnblock(c, hidden, drop) {
  residual {
    depthwise 7x7 pad=3
    layernorm eps=1e-6
    conv hidden 1x1 -> gelu -> conv c 1x1
    layer_scale 1e-6
    drop_path drop
  }
}
conv 8 4x4 stride=4 -> layernorm eps=1e-6
cnblock 8 32 0.0
layernorm eps=1e-6 -> conv 16 2x2 stride=2
cnblock 16 64 0.05 -> cnblock 16 64 0.1
global_avgpool
layernorm eps=1e-6
dense 10 softmax
"""


def small_reference() -> ConvNeXt:
    return ConvNeXt([(8, 16, 1), (16, None, 2)], stochastic_depth_prob=0.1, num_classes=10)


def test_convnext_tiny_has_torchvision_s_parameters():
    summary = spec_compiler.load(SPEC).summary()
    reference = sum(p.numel() for p in convnext_tiny().parameters())
    assert summary["total_params"] == summary["trainable_params"] == reference == 28_589_128


def test_convnext_tiny_drop_rates_are_torchvision_s():
    """0.1 * i / 17 for block i, written to 4 decimals in the spec."""
    written = [float(rate) for rate in re.findall(r"cnblock \d+ \d+ ([\d.]+)", SPEC.read_text())]
    reference = [m.p for m in convnext_tiny().modules() if type(m).__name__ == "StochasticDepth"]
    assert len(written) == len(reference) == 18
    assert written == pytest.approx(reference, abs=5e-5)


def test_convnext_tiny_logits_equal_the_reference():
    """At 64x64 (the head pools globally, so every weight is used at any size)."""
    model = compile_source(SPEC.read_text().replace("input image 3x224x224", "input image 3x64x64"), "convnext.spec")
    module = model.build(seed=0)
    randomize(module)
    reference = convnext_tiny()
    copy_into_reference(module, reference, reference.specc_order())
    assert_same_logits(module, reference, torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))


def test_small_convnext_equals_the_reference_and_exports(tmp_path):
    model = compile_source(SMALL, "convnext_small.spec")
    module = model.build(seed=0)
    randomize(module)
    reference = small_reference()
    assert model.summary()["total_params"] == sum(p.numel() for p in reference.parameters())
    copy_into_reference(module, reference, reference.specc_order())
    assert_same_logits(module, reference, torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    report = model.export(tmp_path / "convnext_small.onnx")
    assert report.max_abs_diff <= 1e-4

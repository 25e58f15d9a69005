"""specs/vit_b_16.spec is torchvision's vit_b_16: the same 86,567,656 parameters, and the
same logits as a plain-PyTorch Vision Transformer (tests/zoo/reference_vit.py) given the
same weights. A small ViT of the same blocks also exports to ONNX with parity in the
default suite (the full model's export runs with SPECC_SLOW=1, tests/test_export.py)."""

from __future__ import annotations

from pathlib import Path

import torch
from reference_vit import VisionTransformer, vit_b_16
from tf_checks import assert_same_logits, copy_into_reference, randomize

import spec_compiler
from spec_compiler import compile_source

SPEC = Path(__file__).resolve().parents[2] / "specs" / "vit_b_16.spec"

SMALL = """\
model vit_small_test
input image 3x32x32
block encoder(f, heads, hidden) {
  residual { layernorm eps=1e-6 -> multihead_attention heads }
  residual { layernorm eps=1e-6 -> dense hidden gelu -> dense f }
}
conv 32 8x8 stride=8
reshape 32x16 -> permute 1x0
class_token
positional_embedding
repeat 2 { encoder 32 4 64 }
layernorm eps=1e-6
class_pool
dense 10 softmax
"""


def small_reference() -> VisionTransformer:
    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
                             num_classes=10)


def test_vit_b_16_has_torchvision_s_parameters():
    summary = spec_compiler.load(SPEC).summary()
    reference = sum(p.numel() for p in vit_b_16().parameters())
    assert summary["total_params"] == summary["trainable_params"] == reference == 86_567_656
    assert summary["layers"][3]["output_shape"] == [None, 197, 768]  # the class token and 196 patches


def test_vit_b_16_logits_equal_the_reference():
    """One 224x224 image (the positional table fixes the size): about 17.6 G multiply-adds each."""
    module = spec_compiler.load(SPEC).build(seed=0)
    randomize(module)
    reference = vit_b_16()
    copy_into_reference(module, reference, reference.specc_order())
    assert_same_logits(module, reference, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1)))


def test_small_vit_equals_the_reference_and_exports(tmp_path):
    model = compile_source(SMALL, "vit_small.spec")
    module = model.build(seed=0)
    randomize(module)
    reference = small_reference()
    assert model.summary()["total_params"] == sum(p.numel() for p in reference.parameters())
    copy_into_reference(module, reference, reference.specc_order())
    assert_same_logits(module, reference, torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2)))
    report = model.export(tmp_path / "vit_small.onnx")
    assert report.max_abs_diff <= 1e-4

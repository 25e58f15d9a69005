"""specs/bert_base.spec is Hugging Face's BertModel (bert-base, with its pooler): two inputs
(token ids and token types), two outputs (the hidden states and the pooled [CLS] vector),
the same 109,482,240 parameters, and the same outputs as a plain-PyTorch BERT
(tests/zoo/reference_bert.py) given the same weights, padding masked. A small BERT made
from the same spec text also exports to ONNX (two inputs, two outputs) with parity in the
default suite; the full model's export runs with SPECC_SLOW=1."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort
import pytest
import torch
from reference_bert import BertModel, bert_base
from tf_checks import randomize

import spec_compiler
from spec_compiler import compile_source

SPEC = Path(__file__).resolve().parents[2] / "specs" / "bert_base.spec"
SLOW = os.environ.get("SPECC_SLOW") == "1"
SMALL_SIZES = [("input tokens 512 vocab=30522", "input tokens 16 vocab=50"), ("input tokens 512 vocab=2",
               "input tokens 16 vocab=2"), ("embedding 768", "embedding 32"), ("dense 768", "dense 32"),
               ("repeat 12 { encoder 768 12 3072 }", "repeat 2 { encoder 32 4 64 }")]


def small_source() -> str:
    text = SPEC.read_text(encoding="utf-8")
    for full, small in SMALL_SIZES:
        assert full in text, full
        text = text.replace(full, small)
    return text


def inputs(vocab: int, steps: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Two samples: the first padded ([PAD] = 0) after 3/4 of its steps, the second not."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (2, steps), generator=generator)
    ids[0, steps * 3 // 4:] = 0
    types = (torch.arange(steps) >= steps // 2).long().expand(2, steps).clone()
    return ids, types


def compare(model, reference: BertModel, steps: int) -> None:
    module = model.build(seed=0)
    randomize(module)
    reference.load_from_specc(module.state_dict())
    module.eval(), reference.eval()
    ids, types = inputs(model.ir.inputs[0].type.vocab, steps)
    with torch.no_grad():
        hidden, pooled = module(ids, types)
        their_hidden, their_pooled = reference(ids, types)
    assert hidden.shape == their_hidden.shape == (2, steps, reference.pooler.dense.in_features)
    torch.testing.assert_close(hidden, their_hidden, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled, their_pooled, atol=1e-5, rtol=1e-5)


def test_bert_base_has_bertmodel_s_parameters():
    model = spec_compiler.load(SPEC)
    summary = model.summary()
    reference = sum(p.numel() for p in bert_base().parameters())
    assert summary["total_params"] == summary["trainable_params"] == reference == 109_482_240
    assert list(model.info.inputs) == ["ids", "types"] and list(model.info.outputs) == ["hidden", "pooled"]


def test_bert_base_outputs_equal_the_reference():
    """32 tokens (the first 32 positions of the table), one sample padded."""
    compare(spec_compiler.load(SPEC), bert_base(), steps=32)


def test_small_bert_equals_the_reference_and_exports_two_inputs_and_outputs(tmp_path):
    model = compile_source(small_source(), "bert_small.spec")
    reference = BertModel(vocab=50, positions=16, features=32, layers=2, heads=4, hidden=64)
    assert model.summary()["total_params"] == sum(p.numel() for p in reference.parameters())
    compare(model, reference, steps=16)
    report = model.export(tmp_path / "bert_small.onnx")
    assert report.max_abs_diff <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "bert_small.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["ids", "types"]
    assert [o.name for o in session.get_outputs()] == ["hidden", "pooled"]


@pytest.mark.skipif(not SLOW, reason="BERT-base, 109 M parameters: set SPECC_SLOW=1 to export and verify it")
def test_bert_base_exports_with_parity(tmp_path):
    report = spec_compiler.load(SPEC).export(tmp_path / "bert_base.onnx")
    assert report.max_abs_diff <= 1e-4 and [o["name"] for o in report.outputs] == ["hidden", "pooled"]

"""Attention masks: `mask=padding`, with and without `causal=true`.

Each attention kind against a direct computation over the unpadded steps; the built
model, its emitted source and its ONNX export (dynamic length) handing the layers the
padding of the token ids; the compile-time checks. The warnings' exact text and where
they appear without torch: tests/compiler/test_warnings_tf.py; here, `specc export --json`.
"""

from __future__ import annotations

import json
import math

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT
from lowering_checks import compare_emitted
from safetensors.torch import save_file

from spec_compiler import SpecError, compile_source
from spec_compiler.backends.torch_source import emit_source, load_source
from spec_compiler.cli import main

WARNINGS = ROOT / "tests" / "golden" / "warnings"

TEXT = """\
model masked_text
input tokens ? vocab=40
embedding 8
positional_embedding sinusoidal
multihead_attention heads=2 mask=padding causal=true
attention score=general mask=padding
attention_pool mask=padding
dense 3 softmax
"""


def padded_ids(lengths: list[int], steps: int, seed: int = 0) -> torch.Tensor:
    """Token ids padded at the front with 0 (as `specc train` pads text): row i keeps its last lengths[i]."""
    ids = torch.randint(1, 40, (len(lengths), steps), generator=torch.Generator().manual_seed(seed))
    for row, length in enumerate(lengths):
        ids[row, : steps - length] = 0
    return ids


# --- each kind ignores the padded steps -------------------------------------------------------

@pytest.mark.parametrize("kind", ["attention", "attention score=general", "bahdanau_attention units=4",
                                  "multihead_attention heads=2", "attention_pool"])
def test_padding_changes_nothing_but_the_padded_steps(kind):
    """The unpadded steps' outputs are those of the same sequence without its padding."""
    model = compile_source(f"input tokens ? vocab=40\nembedding 6\n{kind} mask=padding\n", "t.spec")
    module = model.build(seed=0).eval()
    ids = padded_ids([3, 5], 5)
    with torch.no_grad():
        padded = module(ids)
        for row, length in enumerate((3, 5)):
            alone = module(ids[row : row + 1, 5 - length :])
            ours = padded[row : row + 1, 5 - length :] if padded.dim() == 3 else padded[row : row + 1]
            torch.testing.assert_close(ours, alone, atol=1e-5, rtol=1e-5)
    unmasked = compile_source(f"input tokens ? vocab=40\nembedding 6\n{kind}\n", "t.spec").build(seed=0).eval()
    with torch.no_grad():
        assert not torch.allclose(unmasked(ids)[0], padded[0], atol=1e-4)  # the mask did something


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_padding_is_torch_s_key_padding_mask(causal):
    model = compile_source(f"input tokens 6 vocab=40\nembedding 8\nmha 2 mask=padding causal={str(causal).lower()}\n",
                           "t.spec")
    module = model.build(seed=0).eval()
    ids = padded_ids([2, 6, 4], 6)
    with torch.no_grad():
        x = module.embedding_1(ids)
        ours = module(ids)
        attention = module.multihead_attention_1
        theirs = attention.torch_forward(x)  # nn.MultiheadAttention's own forward, key_padding_mask=ids == 0
    kept = ids != 0  # a padded query attends to padding alone (or nothing): only finite is asked of it
    torch.testing.assert_close(ours[kept], theirs[kept], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(ours).all()


def test_dot_attention_mask_is_the_formula():
    model = compile_source("input tokens 5 vocab=40\nembedding 4\nattention scale=true mask=padding\n", "t.spec")
    module = model.build(seed=0).eval()
    ids = padded_ids([3], 5)
    with torch.no_grad():
        x = module.embedding_1(ids)
        scores = x @ x.transpose(1, 2) / math.sqrt(4)
        scores[:, :, :2] = float("-inf")
        expected = torch.softmax(scores, -1) @ x
        torch.testing.assert_close(module(ids), expected, atol=1e-5, rtol=1e-5)


def test_a_sequence_of_padding_alone_gives_finite_values():
    module = compile_source(TEXT, "t.spec").build(seed=0).eval()
    with torch.no_grad():
        y = module(torch.zeros(2, 5, dtype=torch.int64))
    assert torch.isfinite(y).all()


def test_a_masked_layer_needs_the_model_to_hand_it_the_padding():
    model = compile_source("input tokens 5 vocab=40\nembedding 4\nattention_pool mask=padding\n", "t.spec")
    pool = model.build().attention_pool_1
    pool.padding = None
    with pytest.raises(RuntimeError, match="run it inside the model"):
        pool(torch.randn(2, 5, 4))


# --- the model, its source and its ONNX file hand the padding on ------------------------------------

def test_emitted_source_hands_the_padding_on_too():
    model = compile_source(TEXT, "t.spec")
    source = emit_source(model)
    assert "padding = x == 0" in source
    compare_emitted(model, load_source(source)["MaskedText"])


def test_masked_text_transformer_exports_with_a_dynamic_length(tmp_path):
    model = compile_source(TEXT, "t.spec")
    module = model.build(seed=3).eval()
    save_file(module.state_dict(), str(tmp_path / "weights.safetensors"))
    report = model.export(tmp_path / "masked.onnx", weights=tmp_path / "weights.safetensors")
    assert report.max_abs_diff <= 1e-4
    assert len({c.shape[1] for c in report.checks if c.what == "random"}) >= 2  # two lengths checked
    session = ort.InferenceSession(str(tmp_path / "masked.onnx"), providers=["CPUExecutionProvider"])
    for steps in (3, 17):
        ids = padded_ids([1, steps], steps, seed=steps)
        (ours,) = session.run(None, {"input": ids.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(ours, module(ids).numpy(), atol=1e-5)


# --- compile-time checks ----------------------------------------------------------------------

LENGTH_HINT = "attend before the layers that change the length, or leave mask= out"


@pytest.mark.parametrize("source, message, hint", [
    ("input sequence ?x8\nmultihead_attention heads=2 mask=padding",
     ("multihead_attention mask=padding reads the padding (token id 0) of a tokens input, but the model's input is "
      "?x8 (a sequence, TxF)"), "declare `input tokens T vocab=V`, or leave mask= out"),
    ("input tokens 12 vocab=9\nembedding 4\nmaxpool1d 2\nattention mask=padding",
     ("attention mask=padding has one value per input token (12), but its input 6x4 has 6 steps "
      "(from maxpool1d at line 3)"), LENGTH_HINT),
    ("input tokens 12 vocab=9\nembedding 4\nclass_token\nattention_pool mask=padding",
     ("attention_pool mask=padding has one value per input token (12), but its input 13x4 has 13 steps "
      "(from class_token at line 3)"), LENGTH_HINT),
])
def test_padding_mask_errors(source, message, hint):
    with pytest.raises(SpecError) as caught:
        compile_source(source, "t.spec")
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.message, diagnostic.hint, diagnostic.span.line) == (message, hint, source.count("\n") + 1)


# --- warnings in export --json ----------------------------------------------------------------

def test_export_json_carries_the_warnings(tmp_path):
    spec = str(WARNINGS / "pytorch_momentum.spec")
    result = CliRunner().invoke(main, ["export", spec, "-o", str(tmp_path / "m.onnx"), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (warning,) = json.loads(result.stdout)["warnings"]
    assert warning["message"].startswith("batchnorm momentum=0.1 looks like PyTorch's")
    assert "warning: batchnorm momentum=0.1" in result.stderr

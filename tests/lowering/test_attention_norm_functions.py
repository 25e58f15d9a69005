"""Normalization, attention and function kinds, and plugin layers.

For each kind: its count, shape and FLOPs rules; its builder (taken from the registry)
run forward, with the output shape and the parameter numel (plus BatchNorm running
statistics) equal to the rules'; every attention variant equal to a direct torch
computation of its formula; and the exact text of the errors users meet.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spec_compiler import compile_source, load
from spec_compiler.errors import SpecError
from spec_compiler.layers import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "swish_gate.py"


# --- helpers -----------------------------------------------------------------------

def info(source: str, plugins=()):
    return compile_source(source, "t.spec", plugins).info


def layer(source: str, index: int = -1):
    return info(source).layers[index]


def build(layer_info):
    kind = REGISTRY[layer_info.node.kind]
    return kind.build(layer_info.node.params, layer_info.input, layer_info.output)


def held(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) numbers the module holds: parameters, and BatchNorm's
    running mean and variance (num_batches_tracked is not a parameter)."""
    trainable = sum(p.numel() for p in module.parameters())
    stats = sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, stats


def concrete(dims, length: int = 5) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else length for d in dims)


def check_built(layer_info, batch: int = 2, length: int = 5):
    """Build from the registry, run forward; the output shape and held numbers must
    equal the rules'. Returns (module, input, output)."""
    module = build(layer_info)
    assert held(module) == (layer_info.count.trainable, layer_info.count.non_trainable)
    shape = (batch, *concrete(layer_info.input.dims, length))
    x = torch.randn(shape) if layer_info.input.dtype == "float" else torch.randint(0, layer_info.input.vocab, shape)
    y = module(x)
    assert tuple(y.shape) == (batch, *concrete(layer_info.output.dims, length))
    return module, x, y


def spec_error(source: str, plugins=()):
    with pytest.raises(SpecError) as caught:
        compile_source(source, "t.spec", plugins)
    (diagnostic,) = caught.value.diagnostics
    return diagnostic


# --- the two specs -----------------------------------------------------------------

def _first_comment_count(path: Path) -> int:
    first = path.read_text().splitlines()[0]
    return int(re.search(r"([\d,]+) parameters", first).group(1).replace(",", ""))


def test_lenet_bn_matches_the_brief_34034_total_40_non_trainable():
    model = load(ROOT / "specs" / "lenet_bn.spec")
    count = model.info.count
    assert (count.total, count.trainable, count.non_trainable) == (34_034, 33_994, 40)
    assert _first_comment_count(ROOT / "specs" / "lenet_bn.spec") == 34_034
    without = (ROOT / "specs" / "lenet_bn.spec").read_text().replace(" -> batchnorm", "")
    assert info(without).count.total == 33_954
    bns = [layer for layer in model.info.layers if layer.node.kind == "batchnorm"]
    assert [(b.count.trainable, b.count.non_trainable) for b in bns] == [(8, 8), (32, 32)]


def test_lenet_bn_whole_model_holds_its_count():
    model = load(ROOT / "specs" / "lenet_bn.spec")
    for layer_info in model.info.layers:
        check_built(layer_info)


def test_attention_text_spec_count_and_shapes():
    path = ROOT / "specs" / "attention_text.spec"
    model = load(path)
    assert model.info.count.total == _first_comment_count(path) == 357_569
    pool = next(layer for layer in model.info.layers if layer.node.kind == "attention_pool")
    assert pool.input.dims == (200, 64) and pool.output.dims == (64,)
    assert pool.count.total == 64 * 64 + 64 + 64
    assert model.info.output.dims == (1,)


# --- batchnorm -----------------------------------------------------------------------

@pytest.mark.parametrize("source, count, module_class", [
    ("input image 3x8x8\nbatchnorm", (6, 6), "BatchNorm2d"),
    ("input sequence ?x5\nbn", (10, 10), "BatchNormSequence"),
    ("input vector 7\nbatch_norm", (14, 14), "BatchNorm1d"),
    ("input image 3x8x8\nbatchnorm center=false", (3, 6), "BatchNorm2d"),
    ("input image 3x8x8\nbatchnorm scale=false", (3, 6), "BatchNorm2d"),
    ("input vector 7\nbatchnorm center=false scale=false", (0, 14), "BatchNorm1d"),
])
def test_batchnorm_counts_and_builds(source, count, module_class):
    bn = layer(source)
    assert (bn.count.trainable, bn.count.non_trainable) == count
    assert bn.output == bn.input
    module, _, _ = check_built(bn)
    assert type(module).__name__ == module_class
    assert isinstance(module, torch.nn.modules.batchnorm._BatchNorm)


def test_batchnorm_keras_defaults_momentum_and_eps():
    module = build(layer("input image 3x8x8\nbatchnorm"))
    assert module.eps == pytest.approx(1e-3)
    assert module.momentum == pytest.approx(0.01)  # Keras' 0.99
    module = build(layer("input image 3x8x8\nbatchnorm momentum=0.9 eps=1e-5"))
    assert module.momentum == pytest.approx(0.1) and module.eps == pytest.approx(1e-5)


def test_batchnorm_center_scale_keep_the_other_parameter():
    module = build(layer("input image 3x8x8\nbatchnorm center=false"))
    assert module.bias is None and module.weight.shape == (3,)
    module = build(layer("input image 3x8x8\nbatchnorm scale=false"))
    assert module.weight is None and module.bias.shape == (3,)
    assert [name for name, _ in module.named_parameters()] == ["bias"]


def test_batchnorm_on_a_sequence_normalizes_each_feature_over_batch_and_time():
    module = build(layer("input sequence ?x4\nbatchnorm"))
    with torch.no_grad():
        module.weight.copy_(torch.tensor([1.0, 2.0, 0.5, -1.0]))
        module.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 3.0]))
    x = torch.randn(3, 6, 4) * 3 + 1
    y = module.train()(x)
    mean = x.mean(dim=(0, 1))
    var = x.var(dim=(0, 1), unbiased=False)
    expected = (x - mean) / torch.sqrt(var + 1e-3) * module.weight + module.bias
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(module.running_mean, 0.01 * mean, atol=1e-6, rtol=1e-5)


def test_batchnorm_eval_uses_running_statistics_on_an_image():
    module = build(layer("input image 2x4x4\nbatchnorm")).eval()
    with torch.no_grad():
        module.running_mean.copy_(torch.tensor([1.0, -2.0]))
        module.running_var.copy_(torch.tensor([4.0, 0.25]))
    x = torch.randn(2, 2, 4, 4)
    expected = (x - module.running_mean.view(1, 2, 1, 1)) / torch.sqrt(module.running_var.view(1, 2, 1, 1) + 1e-3)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)


def test_batchnorm_errors():
    diagnostic = spec_error("input sequence 5x3x8x8\nbatchnorm")
    assert diagnostic.message == ("batchnorm expects an image CxHxW, a sequence TxF or a vector, "
                                  "got 5x3x8x8 (a sequence of images, TxCxHxW) (from input sequence at line 1)")
    assert diagnostic.hint == "normalize each frame of a TxCxHxW video with `timedistributed { batchnorm }`"
    diagnostic = spec_error("input tokens 10 vocab=50\nbatchnorm")
    assert diagnostic.message == "batchnorm expects float features, got token ids 10 (from input tokens at line 1)"
    diagnostic = spec_error("input image 3x8x8\nbatchnorm center=false bias_init=zeros")
    assert diagnostic.message == "batchnorm with center=false has no beta, so bias_init= does not apply"
    diagnostic = spec_error("input image 3x8x8\nbatchnorm momentum=1.5")
    assert diagnostic.message == "batchnorm momentum must be less than or equal to 1, got 1.5"


# --- layernorm and lrn ------------------------------------------------------------------

@pytest.mark.parametrize("source, trainable", [
    ("input sequence ?x6\nlayernorm", 12),
    ("input vector 6\nlayer_norm", 12),
    ("input image 3x4x4\nlayernorm", 6),
    ("input sequence 4x6\nlayernorm center=false", 6),
    ("input sequence 4x6\nlayernorm scale=false", 6),
])
def test_layernorm_counts_and_builds(source, trainable):
    ln = layer(source)
    assert (ln.count.trainable, ln.count.non_trainable) == (trainable, 0)
    check_built(ln)


def test_layernorm_normalizes_the_features():
    module = build(layer("input sequence ?x6\nlayernorm"))
    x = torch.randn(2, 5, 6)
    expected = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-3)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
    image = build(layer("input image 3x4x4\nlayernorm"))
    with torch.no_grad():
        image.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
        image.bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
    x = torch.randn(2, 3, 4, 4)
    normed = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-3)
    expected = normed * image.weight.view(1, 3, 1, 1) + image.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(image(x), expected, atol=1e-5, rtol=1e-5)


def test_lrn_is_the_alexnet_formula():
    lrn = layer("input image 8x5x5\nlrn")
    assert lrn.count.total == 0 and lrn.flops == 8 * 5 * 5 * 5
    module, x, y = check_built(lrn)
    x = x * 10
    size, alpha, beta, k = 5, 1e-4, 0.75, 2.0
    channels = x.shape[1]
    expected = torch.empty_like(x)
    for c in range(channels):
        window = x[:, max(0, c - size // 2): min(channels, c + size // 2 + 1)]
        expected[:, c] = x[:, c] / (k + alpha * (window ** 2).sum(1)) ** beta
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
    module = build(layer("input image 8x5x5\nlocal_response_norm 3 alpha=0.01 beta=0.5 k=1"))
    expected = torch.stack([x[:, c] / (1 + 0.01 * (x[:, max(0, c - 1): c + 2] ** 2).sum(1)) ** 0.5
                            for c in range(channels)], dim=1)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)


def test_lrn_errors():
    diagnostic = spec_error("input sequence 10x8\nlrn")
    assert diagnostic.message == ("lrn normalizes across the channels of an image CxHxW, got 10x8 "
                                  "(a sequence, TxF) (from input sequence at line 1)")
    assert diagnostic.hint == "for sequences and vectors use `layernorm` or `batchnorm`"
    diagnostic = spec_error("input image 8x5x5\nlrn 4")
    assert diagnostic.message == "lrn size must be odd (a window centered on each channel), got 4"


# --- attention: dot / general / additive ------------------------------------------------

def _direct_softmax_attention(scores: torch.Tensor, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
    if causal:
        t = x.shape[1]
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(scores, dim=-1) @ x


@pytest.mark.parametrize("scale, causal", [(False, False), (True, False), (False, True), (True, True)])
def test_dot_attention_is_softmax_x_xT_x(scale, causal):
    att = layer(f"input sequence ?x6\nattention scale={str(scale).lower()} causal={str(causal).lower()}")
    assert att.count.total == 0 and att.output.dims == ("?", 6)
    module, x, y = check_built(att, length=7)
    scores = torch.einsum("nif,njf->nij", x, x) / (math.sqrt(6) if scale else 1.0)
    torch.testing.assert_close(y, _direct_softmax_attention(scores, x, causal), atol=1e-5, rtol=1e-5)


def test_general_attention_is_softmax_x_W_xT_x():
    att = layer("input sequence 7x6\nattention general")
    assert att.count.total == 36
    module, x, y = check_built(att)
    W = torch.randn(6, 6) * 0.5
    with torch.no_grad():
        module.kernel.weight.copy_(W)
    scores = torch.einsum("nif,fg,njg->nij", x, W, x)
    torch.testing.assert_close(module(x), _direct_softmax_attention(scores, x), atol=1e-5, rtol=1e-5)
    scaled = build(layer("input sequence 7x6\nluong_attention general scale=true"))
    with torch.no_grad():
        scaled.kernel.weight.copy_(W)
    torch.testing.assert_close(scaled(x), _direct_softmax_attention(scores / math.sqrt(6), x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("source, units", [
    ("input sequence ?x6\nattention additive units=4", 4),
    ("input sequence ?x6\nbahdanau_attention 3", 3),
    ("input sequence ?x6\nbahdanau_attention", 6),
])
def test_additive_attention_is_v_tanh_W1q_plus_W2k(source, units):
    att = layer(source)
    assert att.count.total == 2 * 6 * units + units
    module, x, y = check_built(att, length=5)
    W1, W2, v = torch.randn(units, 6), torch.randn(units, 6), torch.randn(units)
    with torch.no_grad():
        module.query.weight.copy_(W1)
        module.key.weight.copy_(W2)
        module.score.weight.copy_(v.view(1, units))
    n, t, _ = x.shape
    scores = torch.empty(n, t, t)
    for b in range(n):
        for i in range(t):
            for j in range(t):
                scores[b, i, j] = v @ torch.tanh(W1 @ x[b, i] + W2 @ x[b, j])
    torch.testing.assert_close(module(x), _direct_softmax_attention(scores, x), atol=1e-5, rtol=1e-5)


def test_attention_aliases_pick_their_score():
    assert build(layer("input sequence 4x6\nluong_attention")).kind == "dot"
    assert build(layer("input sequence 4x6\ndot_attention")).kind == "dot"
    assert build(layer("input sequence 4x6\nbahdanau_attention")).kind == "additive"
    assert build(layer("input sequence 4x6\nattention score=additive")).kind == "additive"


def test_attention_flops():
    t, f = 10, 6
    assert layer(f"input sequence {t}x{f}\nattention").flops == 2 * t * t * f
    assert layer(f"input sequence {t}x{f}\nattention general").flops == t * f * f + 2 * t * t * f
    assert layer(f"input sequence {t}x{f}\nattention additive units=4").flops == 2 * t * f * 4 + t * t * 4 + t * t * f
    assert layer(f"input sequence ?x{f}\nattention").flops == 2 * f  # a dynamic T counts as 1
    assert layer(f"input sequence {t}x{f}\nmha 2").flops == 4 * t * f * f + 2 * t * t * f
    assert layer(f"input sequence {t}x{f}\nattention_pool 4").flops == t * f * 4 + t * 4 + t * f


def test_attention_errors():
    diagnostic = spec_error("input tokens 20 vocab=100\nembedding 8\nlstm 16\nattention")
    assert diagnostic.message == "attention expects a sequence TxF, got 16 (a vector) (from lstm at line 3)"
    assert diagnostic.hint == ("attention needs the time axis: give the recurrent layer before it "
                               "return_sequences=true; to read a vector as a sequence of single values, "
                               "`reshape 16x1` first")
    diagnostic = spec_error("input image 1x28x28\nattention_pool")
    assert diagnostic.message == ("attention_pool expects a sequence TxF, got 1x28x28 (an image, CxHxW) "
                                  "(from input image at line 1)")
    assert diagnostic.hint == "an image has no time axis: read its rows as time steps with `reshape 28x28`"
    diagnostic = spec_error("input sequence 5x6\nattention scale=true score=additive")
    assert diagnostic.message == ("attention with score=additive takes no scale=true "
                                  "(it divides dot and general scores by sqrt(F))")
    diagnostic = spec_error("input sequence 5x6\nattention units=4")
    assert diagnostic.message == ("attention with score=dot takes no units= (it sizes additive scores: "
                                  "use `attention score=additive units=U` or `bahdanau_attention U`)")
    diagnostic = spec_error("input sequence 5x6\nattention init=he_normal")
    assert diagnostic.message == "attention with score=dot has no weights, so init= does not apply"
    diagnostic = spec_error("input sequence 5x6\nattention score=concat")
    assert diagnostic.message == "attention score must be `dot`, `general` or `additive`, got `concat`"


# --- multihead attention ------------------------------------------------------------------

def test_multihead_attention_count_and_shape():
    mha = layer("input sequence ?x8\nmultihead_attention heads=2")
    assert mha.count.total == 4 * 8 * 8 + 4 * 8 and mha.output.dims == ("?", 8)
    check_built(mha, length=3)
    check_built(mha, length=9)
    assert layer("input sequence ?x8\nmha 4 bias=false").count.total == 4 * 8 * 8
    assert layer("input sequence 5x8\nself_attention heads=4 key_dim=2").count.total == 4 * 8 * 8 + 4 * 8
    assert isinstance(build(mha), torch.nn.MultiheadAttention)


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_is_the_formula_and_torch_s_own_forward(causal):
    mha = layer(f"input sequence ?x8\nmha 2 causal={str(causal).lower()}")
    module, x, y = check_built(mha, length=6)
    module.eval()
    y = module(x)
    torch.testing.assert_close(y, module.torch_forward(x), atol=1e-5, rtol=1e-5)
    # by hand: project, split the 8 features into 2 heads of 4, scaled dot product per head
    Wq, Wk, Wv = module.in_proj_weight.detach().chunk(3)
    bq, bk, bv = module.in_proj_bias.detach().chunk(3)
    q, k, v = x @ Wq.T + bq, x @ Wk.T + bk, x @ Wv.T + bv
    heads = []
    for h in range(2):
        part = slice(4 * h, 4 * h + 4)
        scores = q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(4)
        heads.append(_direct_softmax_attention(scores, v[..., part], causal))
    expected = torch.cat(heads, dim=-1) @ module.out_proj.weight.detach().T + module.out_proj.bias.detach()
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_multihead_attention_errors():
    diagnostic = spec_error("input tokens ? vocab=100\nembedding 10\nmultihead_attention heads=4")
    assert diagnostic.message == ("multihead_attention heads=4 must divide the 10 features of its input ?x10 "
                                  "(from embedding at line 2)")
    assert diagnostic.hint == ("each head attends over features/heads values (PyTorch's nn.MultiheadAttention): "
                               "use heads= one of 1, 2, 5, 10, or project to a multiple of 4 first with `dense N`")
    diagnostic = spec_error("input sequence 5x8\nmha 2 key_dim=8")
    assert diagnostic.message == ("multihead_attention key_dim=8 with heads=2 needs 16 features, its input 5x8 "
                                  "has 8 (from input sequence at line 1)")
    assert diagnostic.hint == ("each head gets features/heads = 4 values: write key_dim=4, leave key_dim out, "
                               "or project first with `dense 16`")
    diagnostic = spec_error("input sequence 5x8\nmha")
    assert diagnostic.message == "`mha` needs a value for `heads`"
    assert diagnostic.hint == "for example: `multihead_attention heads=4`"


# --- attention pooling --------------------------------------------------------------------

def test_attention_pool_is_the_formula_with_a_dynamic_length():
    pool = layer("input sequence ?x6\nattention_pool units=4")
    assert pool.output.dims == (6,) and pool.count.total == 6 * 4 + 4 + 4
    module, _, _ = check_built(pool, length=3)
    W, b, v = torch.randn(4, 6), torch.randn(4), torch.randn(4)
    with torch.no_grad():
        module.proj.weight.copy_(W)
        module.proj.bias.copy_(b)
        module.score.weight.copy_(v.view(1, 4))
    for steps in (1, 4, 9):
        x = torch.randn(2, steps, 6)
        e = torch.tanh(x @ W.T + b) @ v  # (N, T)
        a = torch.softmax(e, dim=1)
        expected = (a.unsqueeze(-1) * x).sum(dim=1)
        torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
        assert torch.allclose(a.sum(1), torch.ones(2))
    assert layer("input sequence 5x6\nattention_pooling").count.total == 6 * 6 + 12


# --- functions -----------------------------------------------------------------------------

FUNCTIONS = [
    # source, output dims, reference on a batch-first tensor
    ("input sequence ?x6\nl2_normalize", ("?", 6), lambda x: x / x.norm(dim=-1, keepdim=True)),
    ("input sequence 4x6\nl2_normalize axis=0", (4, 6), lambda x: x / x.norm(dim=1, keepdim=True)),
    ("input vector 6\nscale 0.5", (6,), lambda x: x * 0.5),
    ("input vector 6\nclip -0.5 0.25", (6,), lambda x: x.clamp(-0.5, 0.25)),
    ("input vector 6\nclip min=0", (6,), lambda x: x.clamp(min=0)),
    ("input vector 6\nclip max=0.1", (6,), lambda x: x.clamp(max=0.1)),
    ("input sequence ?x6\npermute 1x0", (6, "?"), lambda x: x.transpose(1, 2)),
    ("input image 3x4x5\npermute 1x2x0", (4, 5, 3), lambda x: x.permute(0, 2, 3, 1)),
    ("input sequence ?x6\nmean 0", (6,), lambda x: x.mean(1)),
    ("input sequence 4x6\nsum", (4,), lambda x: x.sum(2)),
    ("input sequence 4x6\nmax axis=-1 keepdims=true", (4, 1), lambda x: x.amax(2, keepdim=True)),
    ("input image 3x4x5\nmean 0", (4, 5), lambda x: x.mean(1)),
    ("input vector 6\nabs", (6,), torch.abs),
    ("input vector 6\nsquare", (6,), lambda x: x * x),
    ("input vector 6\nabs -> sqrt", (6,), None),
    ("input vector 6\nexp", (6,), torch.exp),
    ("input vector 6\nexp -> log", (6,), None),
    ("input sequence ?x6\nexpand_dims", (1, "?", 6), lambda x: x.unsqueeze(1)),
    ("input sequence 4x6\nexpand_dims -1", (4, 6, 1), lambda x: x.unsqueeze(-1)),
    ("input sequence 4x6\nexpand_dims -> squeeze 0", (4, 6), None),
]


@pytest.mark.parametrize("source, dims, reference", FUNCTIONS)
def test_functions_shape_count_and_values(source, dims, reference):
    model = info(source)
    assert model.output.dims == dims
    assert model.count.total == 0 and model.flops == 0
    for layer_info in model.layers:
        module, x, y = check_built(layer_info)
        if reference is not None:
            torch.testing.assert_close(y, reference(x), atol=1e-6, rtol=1e-5)


def test_function_chains_compose():
    x = torch.randn(2, 6)
    sqrt_abs = info("input vector 6\nabs -> sqrt")
    y = build(sqrt_abs.layers[1])(build(sqrt_abs.layers[0])(x))
    torch.testing.assert_close(y, x.abs().sqrt())
    exp_log = info("input vector 6\nexp -> log")
    torch.testing.assert_close(build(exp_log.layers[1])(build(exp_log.layers[0])(x)), x, atol=1e-5, rtol=1e-5)


def test_function_errors():
    diagnostic = spec_error("input sequence 4x6\npermute 0x2")
    assert diagnostic.message == ("permute 0x2 is not an order of the 2 axes of 4x6 (a sequence, TxF) "
                                  "(from input sequence at line 1)")
    assert diagnostic.hint == ("name each axis once, counting from 0 (the batch excluded): "
                               "0x1 keeps the order, `permute 1x0` swaps a sequence's T and F")
    # Keras' numbering from 1 (specc's before every axis counted from 0) is named as such
    diagnostic = spec_error("input image 3x4x5\npermute 2x3x1")
    assert diagnostic.message == ("permute 2x3x1 numbers the axes from 1, as Keras' Permute does; specc counts "
                                  "every axis from 0")
    assert diagnostic.hint == "write `permute 1x2x0` (the batch is not an axis)"
    diagnostic = spec_error("input vector 6\nmean")
    assert diagnostic.message == ("mean over the only axis of 6 (a vector) leaves one number per sample, "
                                  "not a tensor (from input vector at line 1)")
    assert diagnostic.hint == "write keepdims=true to keep it as a vector of size 1"
    diagnostic = spec_error("input sequence 4x6\nsum 2")
    assert diagnostic.message == "sum axis 2 is out of range for 4x6 (a sequence, TxF) (from input sequence at line 1)"
    assert diagnostic.hint == ("a sample has 2 axes, numbered 0 to 1 (or -1 for the last); "
                               "the batch is not one of them")
    diagnostic = spec_error("input sequence 4x6\nsqueeze 0")
    assert diagnostic.message == ("squeeze axis 0 has size 4 in 4x6 (a sequence, TxF), not 1 "
                                  "(from input sequence at line 1)")
    diagnostic = spec_error("input vector 6\nclip")
    assert diagnostic.message == "clip needs min=, max= or both, e.g. `clip 0 6`"
    diagnostic = spec_error("input vector 6\nclip 1 0")
    assert diagnostic.message == "clip needs min <= max, got min=1.0, max=0.0"
    diagnostic = spec_error("input tokens 5 vocab=9\nl2_normalize")
    assert diagnostic.message == "l2_normalize expects float features, got token ids 5 (from input tokens at line 1)"


def test_every_new_kind_has_docs_and_an_example_that_compiles():
    inputs = {"attention": "input sequence ?x8", "normalization": "input image 8x6x6",
              "function": "input sequence 4x8"}
    for kind in REGISTRY.kinds():
        if kind.category not in inputs:
            continue
        assert kind.doc and kind.example, kind.name
        source = f"{inputs[kind.category]}\n{kind.example}"
        if kind.name == "squeeze":
            source = f"{inputs['function']}\nexpand_dims -> squeeze 0"
        if kind.name == "channel_shuffle":  # shuffles the channels of an image
            source = f"input image 6x4x4\n{kind.example}"
        info(source)


# --- plugins ---------------------------------------------------------------------------------

PLUGIN_SPEC = "input sequence ?x20\ngated_dense 8 relu\nattention_pool\ndense 1\n"


def _specc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spec_compiler.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_plugin_word_is_unknown_without_the_plugin_and_compiles_with_it(tmp_path):
    spec = tmp_path / "gated.spec"
    spec.write_text(PLUGIN_SPEC)
    # a fresh process, so that no earlier test has registered the plugin
    without = _specc("compile", str(spec), cwd=tmp_path)
    assert without.returncode == 1
    assert without.stderr.splitlines() == [
        f"{spec}:2:1: error: unknown layer `gated_dense`",
        "  2 | gated_dense 8 relu",
        "    | ^^^^^^^^^^^",
        "hint: see docs/language.md for the layer catalogue",  # `dense` is not close: only a shared tail
    ]
    with_plugin = _specc("compile", str(spec), "--plugin", str(PLUGIN), "--json", cwd=tmp_path)
    assert with_plugin.returncode == 0, with_plugin.stderr
    assert "gated_dense" in with_plugin.stdout and "336" in with_plugin.stdout


def test_plugin_kind_counts_shapes_and_builds():
    model = info(PLUGIN_SPEC, plugins=[str(PLUGIN)])
    gated = model.layers[0]
    assert gated.node.kind == "gated_dense"
    assert gated.output.dims == ("?", 8)
    assert gated.count.total == 2 * (20 * 8 + 8) == 336
    assert model.count.total == 336 + (8 * 8 + 16) + 9
    module, x, y = check_built(gated, length=4)
    assert y.shape == (2, 4, 8)
    torch.testing.assert_close(y, module.value(x) * torch.sigmoid(module.gate(x)))
    vector = info("input vector 5\ngated_dense 3", plugins=[str(PLUGIN)]).layers[0]
    assert check_built(vector)[2].shape == (2, 3)


def test_plugin_shape_errors_are_spec_errors():
    diagnostic = spec_error("input image 1x8x8\ngated_dense 4", plugins=[str(PLUGIN)])
    assert diagnostic.message == ("gated_dense expects a vector or a sequence TxF, got 1x8x8 (an image, CxHxW) "
                                  "(from input image at line 1)")
    assert diagnostic.hint == "add `flatten` before it"


# --- standalone source (--emit torch) ----------------------------------------------------

EVERY_KIND = """\
model every_kind
input sequence 6x16
layernorm scale=false -> batchnorm center=false
bahdanau_attention 8 -> mha 4 causal=true -> attention general scale=true -> luong_attention
l2_normalize -> scale 3 -> abs -> sqrt -> square -> exp -> log -> clip -2 2
expand_dims -> squeeze 0 -> permute 1x0 -> permute 1x0
mean 0 keepdims=true -> squeeze 0 -> expand_dims -1 -> max -1
reshape 4x2x2 -> lrn 3 -> batchnorm scale=false -> layernorm
permute 1x2x0 -> reshape 4x4 -> attention_pool
"""


def test_emitted_source_holds_and_computes_the_same_as_the_build(tmp_path):
    import importlib.util

    from spec_compiler.backends.torch_source import emit_source

    model = compile_source(EVERY_KIND, "every_kind.spec")
    built = model.build(seed=0).eval()
    assert held(built) == (model.info.count.trainable, model.info.count.non_trainable)
    path = tmp_path / "every_kind.py"
    path.write_text(emit_source(model))
    spec = importlib.util.spec_from_file_location("every_kind_emitted", path)
    emitted = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(emitted)
    standalone = emitted.EveryKind()
    standalone.load_state_dict(built.state_dict())
    x = torch.randn(2, 6, 16)
    torch.testing.assert_close(standalone.eval()(x), built(x))


# --- through the whole-model lowering -------------------------------------------------------

def test_weight_options_and_trailing_activation_reach_the_new_kinds():
    model = compile_source(
        "input sequence ?x4\n"
        "batchnorm relu init=constant(2) bias_init=constant(-0.5)\n"
        "attention general init=ones\n"
        "mha 2 init=zeros bias_init=ones\n"
        "attention_pool 3 init=constant(0.25) bias_init=zeros\n", "t.spec")
    net = model.build(seed=0)
    state = net.state_dict()
    assert torch.equal(state["batchnorm_1.weight"], torch.full((4,), 2.0))
    assert torch.equal(state["batchnorm_1.bias"], torch.full((4,), -0.5))
    assert torch.equal(state["attention_1.kernel.weight"], torch.ones(4, 4))
    assert torch.equal(state["multihead_attention_1.in_proj_weight"], torch.zeros(12, 4))
    assert torch.equal(state["multihead_attention_1.in_proj_bias"], torch.ones(12))
    assert torch.equal(state["multihead_attention_1.out_proj.bias"], torch.ones(4))
    assert torch.equal(state["attention_pool_1.proj.weight"], torch.full((3, 4), 0.25))
    assert torch.equal(state["attention_pool_1.score.weight"], torch.full((1, 3), 0.25))
    assert torch.equal(state["attention_pool_1.proj.bias"], torch.zeros(3))
    assert held(net) == (model.info.count.trainable, model.info.count.non_trainable)
    assert tuple(net(torch.randn(3, 5, 4)).shape) == (3, 4)
    # batchnorm's trailing relu is applied by the lowering, after the normalization
    bn_relu = compile_source("input vector 4\nbatchnorm relu bias_init=constant(-0.5)", "t.spec").build(seed=0).eval()
    x = torch.randn(8, 4)
    y = bn_relu(x)
    expected = torch.relu(x / math.sqrt(1 + 1e-3) - 0.5)  # fresh running stats: mean 0, variance 1
    torch.testing.assert_close(y, expected)
    assert (y == 0).any()

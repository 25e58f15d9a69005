"""The normalization and transformer kinds of issue 10: groupnorm, instancenorm,
positional_embedding, class_token, class_pool, layer_scale, drop_path.

For each: its count and shape rules, its module (built from the registry) equal to a
direct torch computation of its formula, and the errors users meet. Attention masks and
warnings: test_masks_warnings_tf.py; ConvNeXt and ViT: tests/zoo/.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spec_compiler import SpecError, compile_source
from spec_compiler.layers import REGISTRY


def layer(source: str, index: int = -1):
    return compile_source(source, "t.spec").info.layers[index]


def build(layer_info):
    kind = REGISTRY[layer_info.node.kind]
    return kind.build(layer_info.node.params, layer_info.input, layer_info.output)


def held(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def spec_error(source: str):
    with pytest.raises(SpecError) as caught:
        compile_source(source, "t.spec")
    (diagnostic,) = caught.value.diagnostics
    return diagnostic


@torch.no_grad()
def randomize_affine(module: torch.nn.Module) -> None:
    for name, parameter in module.named_parameters():
        parameter.copy_(torch.rand_like(parameter) + 0.5 if name == "weight" else torch.randn_like(parameter))


# --- groupnorm and instancenorm ------------------------------------------------------------

@pytest.mark.parametrize("source, trainable", [
    ("input image 8x5x5\ngroupnorm 4", 16), ("input sequence ?x8\ngroup_norm 2", 16), ("input vector 8\ngroupnorm 4", 16),
    ("input image 8x5x5\ngroupnorm 2 center=false", 8), ("input image 8x5x5\ninstancenorm", 16),
    ("input sequence 6x8\ninstance_norm scale=false", 8), ("input image 8x5x5\ninstancenorm center=false scale=false", 0),
])
def test_group_and_instance_norm_count_what_they_hold(source, trainable):
    norm = layer(source)
    assert (norm.count.trainable, norm.count.non_trainable) == (trainable, 0)
    assert norm.output == norm.input and norm.flops == norm.input.numel_estimate()
    module = build(norm)
    assert held(module) == trainable and not list(module.buffers())  # no running statistics


def test_groupnorm_is_the_formula_on_images_sequences_and_vectors():
    module = build(layer("input image 8x5x5\ngroupnorm 4 eps=1e-5"))
    randomize_affine(module)
    x = torch.randn(2, 8, 5, 5)
    groups = x.view(2, 4, 2 * 25)
    normed = ((groups - groups.mean(-1, keepdim=True)) /
              torch.sqrt(groups.var(-1, unbiased=False, keepdim=True) + 1e-5)).view(2, 8, 5, 5)
    expected = normed * module.weight.view(1, 8, 1, 1) + module.bias.view(1, 8, 1, 1)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)
    sequence = build(layer("input sequence ?x8\ngroupnorm 2"))
    randomize_affine(sequence)
    x = torch.randn(3, 7, 8)  # statistics over time and each group's 4 features
    expected = F.group_norm(x.transpose(1, 2), 2, sequence.weight, sequence.bias, 1e-3).transpose(1, 2)
    torch.testing.assert_close(sequence(x), expected)
    vector = build(layer("input vector 8\ngroupnorm 2 center=false"))
    x = torch.randn(3, 8)
    expected = F.group_norm(x, 2, vector.weight, None, 1e-3)
    torch.testing.assert_close(vector(x), expected)


def test_instancenorm_uses_each_sample_s_own_statistics_in_training_and_evaluation():
    module = build(layer("input image 3x4x4\ninstancenorm"))
    randomize_affine(module)
    x = torch.randn(2, 3, 4, 4) * 3 + 1
    flat = x.flatten(2)
    normed = ((flat - flat.mean(-1, keepdim=True)) /
              torch.sqrt(flat.var(-1, unbiased=False, keepdim=True) + 1e-3)).view_as(x)
    expected = normed * module.weight.view(1, 3, 1, 1) + module.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(module.train()(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(module.eval()(x), expected, atol=1e-5, rtol=1e-5)
    sequence = build(layer("input sequence ?x3\ninstancenorm center=false scale=false"))
    x = torch.randn(2, 9, 3)
    normed = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-3)
    torch.testing.assert_close(sequence(x), normed, atol=1e-5, rtol=1e-5)


def test_group_and_instance_norm_errors():
    diagnostic = spec_error("input image 6x4x4\ngroupnorm 4")
    assert diagnostic.message == "groupnorm groups=4 must divide the 6 channels of its input 6x4x4 (from input image at line 1)"
    assert diagnostic.hint == ("each group normalizes channels/groups channels together: use groups= one of "
                               "1, 2, 3, 6")
    diagnostic = spec_error("input vector 6\ninstancenorm")
    assert diagnostic.message == ("instancenorm expects an image CxHxW or a sequence TxF, got 6 (a vector) "
                                  "(from input vector at line 1)")
    assert diagnostic.hint.startswith("a vector's features have no positions")
    assert spec_error("input image 6x4x4\ngroupnorm 3 scale=false init=ones").message == (
        "groupnorm with scale=false has no gamma, so init= does not apply")


# --- positional_embedding -----------------------------------------------------------------

def test_learned_positions_add_the_first_T_rows_of_the_table():
    positions = layer("input sequence ?x6\npositional_embedding max_length=10")
    assert positions.count.total == 60 and positions.output.dims == ("?", 6) and positions.flops == 0
    module = build(positions)
    assert tuple(module.weight.shape) == (10, 6)
    assert abs(module.weight.std().item() - 0.02) < 0.01  # N(0, 0.02), as BERT and ViT
    for steps in (1, 4, 10):
        x = torch.randn(2, steps, 6)
        torch.testing.assert_close(module(x), x + module.weight[:steps])
    assert layer("input sequence 7x6\npos_embedding").count.total == 42  # max_length defaults to T


def test_sinusoidal_positions_are_vaswani_s_for_any_length():
    for features in (6, 7):
        positions = layer(f"input sequence ?x{features}\npositional_embedding sinusoidal")
        assert positions.count.total == 0
        module = build(positions)
        for steps in (1, 5, 40):
            expected = torch.zeros(steps, features)
            for t in range(steps):
                for i in range(0, features, 2):
                    angle = t / 10000 ** (i / features)
                    expected[t, i] = math.sin(angle)
                    if i + 1 < features:
                        expected[t, i + 1] = math.cos(angle)
            x = torch.randn(2, steps, features)
            torch.testing.assert_close(module(x), x + expected, atol=1e-5, rtol=1e-5)


def test_positional_embedding_errors():
    diagnostic = spec_error("input sequence ?x6\npositional_embedding")
    assert diagnostic.message == ("a learned positional_embedding needs a table length: its input ?x6 has a run-time "
                                  "length (from input sequence at line 1)")
    assert diagnostic.hint == "write max_length=N (the longest sequence), or use encoding=sinusoidal"
    assert spec_error("input sequence 9x6\npositional_embedding max_length=8").message == (
        "positional_embedding max_length=8 is shorter than its input 9x6 (from input sequence at line 1)")
    assert spec_error("input sequence 9x6\npositional_embedding sinusoidal init=zeros").message == (
        "positional_embedding with encoding=sinusoidal has no weights, so init= does not apply")
    assert spec_error("input sequence 9x6\npositional_embedding bias_init=zeros").message.startswith(
        "positional_embedding has no bias, so bias_init= does not apply")
    diagnostic = spec_error("input image 8x4x4\npositional_embedding")
    assert diagnostic.message == ("positional_embedding expects a sequence TxF, got 8x4x4 (an image, CxHxW) "
                                  "(from input image at line 1)")
    assert diagnostic.hint == ("an image is not a sequence: make its 4x4 positions the steps with "
                               "`reshape 8x16 -> permute 1x0` (16x8)")


def test_positions_take_initializers_as_an_embedding_table():
    module = compile_source("input sequence 5x4\npositional_embedding init=ones\nclass_token init=constant(0.5)\n",
                            "t.spec").build()
    assert torch.all(module.positional_embedding_1.weight == 1) and torch.all(module.class_token_1.token == 0.5)


# --- class_token and class_pool ------------------------------------------------------------

def test_class_token_goes_first_and_class_pool_reads_it():
    model = compile_source("input sequence ?x4\nclass_token\nclass_pool\n", "t.spec")
    token, pool = model.info.layers
    assert token.output.dims == ("?", 4) and token.count.total == 4 and pool.output.dims == (4,)
    assert layer("input sequence 9x4\ncls_token").output.dims == (10, 4)
    module = model.build()
    assert torch.all(module.class_token_1.token == 0)  # zeros at first, as torchvision's ViT
    with torch.no_grad():
        module.class_token_1.token.copy_(torch.arange(4.0))
    x = torch.randn(3, 6, 4)
    with_token = module.class_token_1(x)
    assert with_token.shape == (3, 7, 4)
    torch.testing.assert_close(with_token[:, 1:], x)
    torch.testing.assert_close(with_token[:, 0], torch.arange(4.0).expand(3, 4))
    torch.testing.assert_close(module(x), torch.arange(4.0).expand(3, 4))


def test_class_token_errors():
    diagnostic = spec_error("input vector 8\nclass_pool")
    assert diagnostic.message == "class_pool expects a sequence TxF, got 8 (a vector) (from input vector at line 1)"
    assert diagnostic.hint == "a vector has no steps: put it before the pooling (`class_pool`, `global_avgpool`)"
    assert spec_error("input tokens 5 vocab=9\nclass_token").message == (
        "class_token expects float features, got token ids 5 (from input tokens at line 1)")


# --- layer_scale and drop_path ----------------------------------------------------------------

def test_layer_scale_multiplies_each_channel():
    image = layer("input image 3x4x4\nlayer_scale 0.5")
    assert image.count.total == 3 and image.flops == 48
    module = build(image)
    assert torch.all(module.gamma == 0.5) and torch.all(build(layer("input vector 3\nlayer_scale")).gamma == 1e-6)
    with torch.no_grad():
        module.gamma.copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(module(x), x * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1))
    sequence = build(layer("input sequence ?x3\nlayerscale 2"))
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(sequence(x), 2 * x)
    assert spec_error("input sequence 2x3x4x4\nlayer_scale").message.startswith(
        "layer_scale expects an image CxHxW, a sequence TxF or a vector")


def test_drop_path_drops_whole_samples_while_training_only():
    model = compile_source("input image 4x3x3\nresidual { conv 4 3x3 pad=same -> drop_path 0.5 }\n", "t.spec")
    assert model.summary()["total_params"] == 4 * 4 * 9 + 4
    drop = build(layer("input image 4x3x3\nstochastic_depth 0.25"))
    x = torch.randn(4000, 4, 3, 3)
    assert torch.equal(drop.eval()(x), x)
    torch.manual_seed(0)
    y = drop.train()(x)
    kept = (y != 0).flatten(1).any(1)
    torch.testing.assert_close(y[kept], x[kept] / 0.75)  # kept samples are scaled whole
    assert torch.all(y[~kept] == 0)  # dropped samples are zero everywhere
    assert abs((~kept).float().mean().item() - 0.25) < 0.03
    assert torch.equal(build(layer("input vector 3\ndrop_path 0")).train()(x), x)
    assert spec_error("input vector 3\ndrop_path 1").message == "drop_path rate must be less than 1, got 1"


# --- export ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "input image 4x8x8\ngroupnorm 2 -> instancenorm -> instancenorm center=false scale=false\n"
    "conv 8 3x3 pad=same -> groupnorm 4 center=false -> layer_scale 0.5\nglobal_avgpool\ndense 3\n",
    "input sequence ?x6\ngroupnorm 3 -> instancenorm -> positional_embedding sinusoidal\n"
    "residual { dense 6 gelu -> layer_scale 0.1 -> drop_path 0.2 }\nclass_token -> class_pool\ndense 2 softmax\n",
])
def test_the_new_kinds_export_with_parity(source, tmp_path):
    """ONNX export verifies against PyTorch at two batch sizes (and two lengths for `?`)."""
    model = compile_source(source, "t.spec")
    report = model.export(tmp_path / "m.onnx")
    assert report.max_abs_diff <= 1e-4
    if "?" in source:
        assert len({c.shape[1] for c in report.checks if c.what == "random"}) >= 2

"""Lowering to PyTorch: the built module is exactly the network `specc compile` describes.

For every spec in specs/, every registry kind and random valid specs (hypothesis): the
module's parameters plus BatchNorm running statistics equal the reported total, its
trainable parameters the reported trainable count, and a real forward pass gives the
inferred output shape at two batch sizes (and two lengths where the length is dynamic).
Then module paths, the logits path, seeds, `frozen` and plugin kinds. Initializers,
regularizers, constraints and weight roles: test_weight_options.py; the standalone
source of `--emit torch`: test_emit_torch.py.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from lowering_checks import (
    BIG_FLOPS,
    CANDIDATE_INPUTS,
    HYPOTHESIS,
    SPECS,
    STRUCTURE,
    check_model,
    compare_emitted,
    compiled,
    counted,
    first_valid,
    image_specs,
    one_thread,  # noqa: F401  (autouse fixture: one torch thread)
    sample,
    sequence_specs,
)

import spec_compiler
from spec_compiler import REGISTRY, Count, SpecError, compile_source
from spec_compiler.backends.torch_build import SpecModule
from spec_compiler.backends.torch_source import emit_source, load_source

# --- every spec, every kind ----------------------------------------------------------

HUGE_FLOPS = 50_000_000_000  # per sample: more than a few seconds for one forward on a CPU

@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_files_build_as_summarized(path):
    model = spec_compiler.load(path)
    if model.summary()["flops"] > HUGE_FLOPS:  # U-Net's 150 G: shapes on the meta device (tests/zoo computes it)
        check_model(model, batches=(), meta_batches=(1, 3))
    elif model.summary()["flops"] > BIG_FLOPS:  # one real forward; a second batch size on the meta device
        check_model(model, batches=(1,), meta_batches=(3,))
    else:
        check_model(model, batches=(1, 3))


@pytest.mark.parametrize("kind", [k.name for k in REGISTRY.kinds()])
def test_every_registry_kind_conforms(kind):
    """Each kind's example, on the first input it accepts, builds to what its rules say;
    on a sequence it also runs with a dynamic length."""
    entry = REGISTRY[kind]
    model, candidate = first_valid(entry.example or kind)
    assert model is not None, f"`{entry.example}` accepts none of {CANDIDATE_INPUTS}"
    check_model(model)
    compare_emitted(model, load_source(emit_source(model))["Test"])  # every kind emits as source
    if candidate.startswith(("sequence", "tokens")) and candidate != "sequence 1x8":
        dynamic = candidate.replace("10", "?", 1) if candidate.startswith("tokens") else \
            candidate.replace(candidate.split()[1].split("x")[0], "?", 1)
        try:
            dynamic_model = compiled(f"input {dynamic}\n{entry.example}\n")
        except SpecError:
            return  # the kind needs a known length (flatten-like)
        check_model(dynamic_model)


# --- random specs (hypothesis) -------------------------------------------------------

@HYPOTHESIS
@given(image_specs())
def test_random_image_specs_build_as_summarized(source):
    module = check_model(compiled(source), lengths=(1,))
    _check_logits(module, compiled(source))


@settings(HYPOTHESIS, max_examples=12)
@given(sequence_specs())
def test_random_sequence_specs_build_as_summarized(source):
    module = check_model(compiled(source), lengths=(5, 9))
    _check_logits(module, compiled(source))


def _check_logits(module: SpecModule, model) -> None:
    x = sample(model.info.ir.input.type, 2, 7)
    with torch.no_grad():
        y, logits = module(x), module.forward_logits(x)
    if module.final_activation == "softmax":
        torch.testing.assert_close(torch.softmax(logits, dim=-1), y)
    elif module.final_activation == "sigmoid":
        torch.testing.assert_close(torch.sigmoid(logits), y)
    else:
        torch.testing.assert_close(logits, y)


# --- names, logits, seeds ------------------------------------------------------------

def test_state_dict_keys_follow_node_paths():
    keys = set(compiled(STRUCTURE).build().state_dict())
    for key in ("basic_1.conv2d_1.weight", "residual_1.body.conv2d_1.weight", "residual_1.shortcut.conv2d_1.bias",
                "concat_1.branch_1.conv2d_1.weight", "concat_1.branch_2.conv2d_1.weight",
                "add_1.branch_2.conv2d_1.weight", "dense_1.weight"):
        assert key in keys
    # trailing activations hold nothing
    assert not any("relu" in key or "softmax" in key for key in keys)


def test_summary_names_are_module_paths():
    """A layer's name in `specc compile --json` is where its module sits in the built model."""
    model = compiled(STRUCTURE)
    modules = dict(model.build().named_modules())

    def walk(layers):
        for layer in layers:
            assert layer["name"] in modules, layer["name"]
            for body in layer.get("children", []):
                walk(body)

    walk(model.summary()["layers"])


@pytest.mark.parametrize("tail, final", [
    ("dense 10 softmax", "softmax"), ("dense 1 sigmoid", "sigmoid"), ("dense 10\nsoftmax", "softmax"),
    ("dense 10 relu", None), ("dense 10", None),
    ("block head(n) {\n  dense n\n  softmax\n}\nhead 10", "softmax"),
    ("timedistributed { dense 5 relu -> dense 3 sigmoid }", "sigmoid"),
    ("timedistributed { dense 3 softmax -> dense 2 }", None),
])
def test_forward_logits_skips_only_a_final_softmax_or_sigmoid(tail, final):
    model = compiled(f"input sequence 4x6\n{tail}\n")
    module = model.build(seed=0)
    assert module.final_activation == final
    _check_logits(module, model)


def test_token_input_takes_int64_ids():
    module = compiled("input tokens 7 vocab=11\nembedding 4\nflatten\ndense 2\n").build()
    assert module.input_dtype == torch.int64
    assert module(torch.randint(0, 11, (2, 7), dtype=torch.int64)).shape == (2, 2)


def test_seed_makes_initialization_reproducible():
    model = compiled(STRUCTURE)
    a, b, c = model.build(seed=3), model.build(seed=3), model.build(seed=4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_build_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    compiled(STRUCTURE).build(seed=5)
    assert torch.equal(torch.rand(3), expected)


# --- frozen --------------------------------------------------------------------------

def test_frozen_layers_get_no_gradient():
    model = compiled("input vector 6\ndense 5 frozen=true relu\n"
                     "block head(n) {\n  dense n\n}\nhead 3 frozen=true\ndense 2\n")
    module = model.build(seed=0)
    module(torch.randn(4, 6)).sum().backward()
    assert module.dense_1.weight.grad is None and module.head_1.dense_1.weight.grad is None
    assert module.dense_2.weight.grad is not None
    assert counted(module)[1] == model.summary()["trainable_params"] == 2 * 3 + 2


def test_frozen_layers_inside_structures_count_where_they_sit():
    """Inference splits every node's count as training sees it, bodies included."""
    model = compiled("input image 3x8x8\nresidual { conv 3 3x3 pad=same frozen=true -> batchnorm }\n"
                     "flatten\ndense 2\n")
    residual = model.summary()["layers"][0]
    conv, norm = residual["children"][0]
    assert (conv["trainable"], conv["non_trainable"]) == (0, 84)
    assert (norm["trainable"], norm["non_trainable"]) == (6, 6)
    assert (residual["trainable"], residual["non_trainable"]) == (6, 90)
    assert model.info.as_trained == Count(6 + 386, 90)
    check_model(model)  # the built module holds exactly these trainable parameters


def test_frozen_weights_are_not_constrained():
    module = compiled("input vector 6\ndense 5 constraint=max_norm(0.01) frozen=true\n").build(seed=0)
    before = module.dense_1.weight.detach().clone()
    module.apply_constraints()
    assert torch.equal(module.dense_1.weight, before)


def test_frozen_batchnorm_keeps_its_statistics_while_training():
    module = compiled("input image 2x4x4\nbatchnorm frozen=true\nbatchnorm\n").build().train()
    frozen, live = module.batchnorm_1, module.batchnorm_2
    assert not frozen.training and live.training
    before = frozen.running_mean.clone()
    module(torch.randn(8, 2, 4, 4) + 3)
    assert torch.equal(frozen.running_mean, before)
    assert not torch.equal(live.running_mean, torch.zeros(2))


PLUGIN = '''
"""A plugin layer kind: `scaled_dense N` = a dense layer times a learned scalar."""
import torch
from torch import nn

from spec_compiler import Count, LayerKind, LayerParams, Slot, register


class ScaledDense(nn.Module):
    def __init__(self, features: int, units: int):
        super().__init__()
        self.linear = nn.Linear(features, units)
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.gain * self.linear(x)


class ScaledDenseParams(LayerParams):
    units: int
    activation: str | None = None


def _build(p, x, y):
    return ScaledDense(x.dims[-1], p.units)


register(LayerKind(
    name="scaled_dense_lowering_test", params=ScaledDenseParams, slots=(Slot("units"),),
    shape=lambda p, x: x.with_dims(*x.dims[:-1], p.units),
    count=lambda p, x, y: Count(x.dims[-1] * p.units + p.units + 1),
    build=_build, doc="a dense layer with a learned gain", example="scaled_dense_lowering_test 4",
))
'''


def test_plugin_layers_build_and_emit(tmp_path):
    plugin = tmp_path / "lowering_plugin.py"
    plugin.write_text(PLUGIN)
    model = compile_source("model plugged\ninput vector 6\nscaled_dense_lowering_test 4\ndense 2 softmax\n",
                           "test.spec", plugins=[str(plugin)])
    module = check_model(model)
    assert "scaled_dense_lowering_test_1.gain" in module.state_dict()
    text = emit_source(model)
    assert "class ScaledDense(nn.Module)" in text and "spec_compiler" not in text
    compare_emitted(model, load_source(text)["Plugged"])

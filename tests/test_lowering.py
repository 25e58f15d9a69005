"""Lowering to PyTorch: the built module is exactly the network `specc compile` describes.

For every spec in specs/, every registry kind and random valid specs (hypothesis): the
module's parameters plus BatchNorm running statistics equal the reported total, its
trainable parameters the reported trainable count, and a real forward pass gives the
inferred output shape at two batch sizes (and two lengths where the length is dynamic).
Then initializers, regularizers, constraints, `frozen`, the logits path, and the
standalone source written by `specc compile --emit torch`.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import spec_compiler
from spec_compiler import REGISTRY, Count, SpecError, compile_source
from spec_compiler.backends.torch_build import SpecModule
from spec_compiler.backends.torch_source import emit_source, load_source
from spec_compiler.cli import main as cli_main
from spec_compiler.ir import Node
from spec_compiler.layers.base import NO_WEIGHTS, TORCH_NAMED_WEIGHTS, kernel_ops

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.spec"))
LENGTH_CHANGING = {"conv1d", "maxpool1d", "avgpool1d"}  # may change a dynamic length
BIG_FLOPS = 300_000_000  # per sample: such specs run one real forward (batch 1)


def compiled(source: str):
    return compile_source(source, "test.spec")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one thread is as fast, and immune to a busy machine's
    thread contention (a 200-step LSTM waits on a barrier every step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the shared check ----------------------------------------------------------------

def sample(t, batch: int, length: int) -> torch.Tensor:
    dims = [d if isinstance(d, int) else length for d in t.dims]
    if t.dtype == "int":
        return torch.randint(0, t.vocab, (batch, *dims))
    return torch.randn(batch, *dims)


def counted(module: nn.Module) -> tuple[int, int]:
    """(parameters + BatchNorm running statistics, trainable parameters) the module holds."""
    total = sum(p.numel() for p in module.parameters())
    total += sum(b.numel() for name, b in module.named_buffers() if name.endswith(("running_mean", "running_var")))
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return total, trainable


def kinds_in(nodes: tuple[Node, ...]) -> set[str]:
    found = set()
    for node in nodes:
        found.add(node.kind)
        for body in node.bodies:
            found |= kinds_in(body)
    return found


def check_model(model, batches=(1, 3), lengths=(6, 11), meta_batches=()) -> SpecModule:
    """Counts and real output shapes of the built module against the summary
    (`meta_batches`: batch sizes run on the meta device, shapes without arithmetic)."""
    summary = model.summary()
    module = model.build(seed=0)
    assert isinstance(module, SpecModule)
    total, trainable = counted(module)
    assert total == summary["total_params"], model.table()
    assert trainable == summary["trainable_params"], model.table()
    module.eval()
    t_in, t_out = model.info.ir.input.type, model.info.output
    dynamic = not t_in.is_static
    exact_length = not (kinds_in(model.ir.nodes) & LENGTH_CHANGING)
    with torch.no_grad():
        for batch in batches:
            for length in (lengths if dynamic else lengths[:1]):
                y = module(sample(t_in, batch, length))
                assert y.dtype == torch.float32
                assert y.dim() == 1 + t_out.rank, (tuple(y.shape), t_out)
                for got, want in zip(y.shape[1:], t_out.dims):
                    if isinstance(want, int):
                        assert got == want, (tuple(y.shape), t_out)
                    elif exact_length:
                        assert got == length, (tuple(y.shape), t_out)
                    else:
                        assert got > 0
                assert y.shape[0] == batch
        if meta_batches:
            on_meta = module.to("meta")
            for batch in meta_batches:
                y = on_meta(sample(t_in, batch, lengths[0]).to("meta"))
                assert tuple(y.shape) == (batch, *t_out.dims)
    return module


# --- every spec, every kind ----------------------------------------------------------

@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_files_build_as_summarized(path):
    model = spec_compiler.load(path)
    if model.summary()["flops"] > BIG_FLOPS:  # one real forward; a second batch size on the meta device
        check_model(model, batches=(1,), meta_batches=(3,))
    else:
        check_model(model, batches=(1, 3))


CANDIDATE_INPUTS = [
    "image 3x12x12", "image 16x12x12", "sequence 10x8", "vector 16", "vector 400",
    "tokens 10 vocab=20", "sequence 4x3x12x12", "sequence 1x8", "image 64x8x8",
]


def _first_valid(example: str):
    for candidate in CANDIDATE_INPUTS:
        try:
            return compiled(f"input {candidate}\n{example}\n"), candidate
        except SpecError:
            continue
    return None, None


@pytest.mark.parametrize("kind", [k.name for k in REGISTRY.kinds()])
def test_every_registry_kind_conforms(kind):
    """Each kind's example, on the first input it accepts, builds to what its rules say;
    on a sequence it also runs with a dynamic length."""
    entry = REGISTRY[kind]
    model, candidate = _first_valid(entry.example or kind)
    assert model is not None, f"`{entry.example}` accepts none of {CANDIDATE_INPUTS}"
    check_model(model)
    _compare_emitted(model, load_source(emit_source(model))["Test"])  # every kind emits as source
    if candidate.startswith(("sequence", "tokens")) and candidate != "sequence 1x8":
        dynamic = candidate.replace("10", "?", 1) if candidate.startswith("tokens") else \
            candidate.replace(candidate.split()[1].split("x")[0], "?", 1)
        try:
            dynamic_model = compiled(f"input {dynamic}\n{entry.example}\n")
        except SpecError:
            return  # the kind needs a known length (flatten-like)
        check_model(dynamic_model)


# --- random specs (hypothesis) -------------------------------------------------------

@st.composite
def image_specs(draw) -> str:
    """A valid image model: convs, pools, blocks, repeat, residual, concat, add, options."""
    c = draw(st.integers(1, 4))
    h, w = draw(st.integers(6, 14)), draw(st.integers(6, 14))
    lines = ["model random_image", f"input image {c}x{h}x{w}",
             "block unit(f, s=1) {", "  conv f 3x3 stride=s pad=same bias=false -> batchnorm -> relu", "}"]
    options = st.sampled_from(["", " init=he_normal", " init=glorot_uniform bias_init=constant(0.1)",
                               " regularizer=l2(0.01)", " constraint=max_norm(2)", " frozen=true"])
    activation = st.sampled_from(["", " relu", " tanh", " leaky_relu"])
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(
            ["conv", "conv_valid", "strided", "pool", "block", "repeat", "residual", "projection",
             "concat", "add", "norm", "separable", "depthwise", "dropout"]))
        f = draw(st.integers(1, 6))
        if choice == "conv":
            k = draw(st.sampled_from([1, 3, 5]))
            lines.append(f"conv {f} {k}x{k} pad=same{draw(activation)}{draw(options)}")
            c = f
        elif choice == "conv_valid" and min(h, w) >= 3:
            lines.append(f"conv {f}x3x3{draw(activation)}{draw(options)}")
            c, h, w = f, h - 2, w - 2
        elif choice == "strided":
            lines.append(f"conv {f} 3x3 stride=2 pad=same{draw(options)}")
            c, h, w = f, -(-h // 2), -(-w // 2)
        elif choice == "pool" and min(h, w) >= 2:
            lines.append(draw(st.sampled_from(["maxpool 2", "avgpool 2"])))
            h, w = h // 2, w // 2
        elif choice == "block":
            s = draw(st.sampled_from([1, 2]))
            lines.append(f"unit {f} s={s}")
            c, h, w = f, -(-h // s), -(-w // s)
        elif choice == "repeat":
            lines.append(f"repeat 2 {{ conv {c} 3x3 pad=same relu }}")
        elif choice == "residual":
            lines.append(f"residual {{ conv {c} 3x3 pad=same relu -> conv {c} 3x3 pad=same{draw(options)} }}")
        elif choice == "projection":
            lines += [f"residual {{ conv {f} 3x3 stride=2 pad=same -> batchnorm",
                      f"  shortcut {{ conv {f} 1x1 stride=2 }} }}"]
            c, h, w = f, -(-h // 2), -(-w // 2)
        elif choice == "concat":
            g = draw(st.integers(1, 4))
            lines.append(f"concat {{ branch {{ conv {f} 1x1 }}; branch {{ conv {g} 3x3 pad=same relu }}; "
                         f"branch {{ maxpool 3 stride=1 pad=same }} }}")
            c = f + g + c
        elif choice == "add":
            lines.append(f"add {{ branch {{ conv {f} 1x1 }}; branch {{ conv {f} 3x3 pad=same{draw(options)} }} }}")
            c = f
        elif choice == "norm":
            lines.append(draw(st.sampled_from(["batchnorm", "batchnorm frozen=true", "lrn 3"])))
        elif choice == "separable":
            lines.append(f"separable {f} 3x3 pad=same relu")
            c = f
        elif choice == "depthwise":
            lines.append("depthwise 3x3 pad=same multiplier=2")
            c = 2 * c
        elif choice == "dropout":
            lines.append("dropout 0.25")
    lines.append(draw(st.sampled_from(["flatten", "global_avgpool", "global_maxpool"])))
    lines.append(f"dense {draw(st.integers(1, 8))}{draw(st.sampled_from(['', ' relu', ' softmax', ' sigmoid']))}")
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["softmax", "sigmoid", "dense 3 softmax"])))
    return "\n".join(lines) + "\n"


@st.composite
def sequence_specs(draw) -> str:
    """A valid text/sequence model: embedding, recurrent, bidirectional, conv1d,
    time-distributed and attention layers, on a static or dynamic length."""
    length = draw(st.sampled_from(["12", "?"]))
    if draw(st.booleans()):
        lines = ["model random_text", f"input tokens {length} vocab=30", f"embedding {draw(st.sampled_from([4, 8]))}"]
    else:
        lines = ["model random_sequence", f"input sequence {length}x{draw(st.sampled_from([4, 8]))}"]
    features = 8
    lines.append("dense 8")
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.sampled_from(["lstm", "gru", "rnn", "bidirectional", "conv1d", "timedistributed",
                                       "attention", "general", "additive", "multihead", "layernorm", "dropout"]))
        units = draw(st.sampled_from([4, 6, 8]))
        if choice in ("lstm", "gru", "rnn"):
            layers = draw(st.sampled_from([1, 2]))
            lines.append(f"{choice} {units} return_sequences=true layers={layers}")
            features = units
        elif choice == "bidirectional":
            merge = draw(st.sampled_from(["concat", "sum"]))
            lines.append(f"bidirectional merge={merge} {{ gru {units} return_sequences=true }}")
            features = 2 * units if merge == "concat" else units
        elif choice == "conv1d":
            lines.append(f"conv1d {units} 3 pad=same relu")
            features = units
        elif choice == "timedistributed":
            lines.append(f"timedistributed {{ dense {units} relu }}")
            features = units
        elif choice == "attention":
            lines.append("attention")
        elif choice == "general":
            lines.append("luong_attention general")
        elif choice == "additive":
            lines.append(f"bahdanau_attention units={units}")
        elif choice == "multihead" and features % 2 == 0:
            lines.append("multihead_attention heads=2")
        elif choice == "layernorm":
            lines.append("layernorm")
        elif choice == "dropout":
            lines.append("dropout 0.1")
    lines.append(draw(st.sampled_from(["lstm 5", "gru 5", "attention_pool", "global_avgpool",
                                       "bidirectional { lstm 3 }", "timedistributed { dense 3 softmax }"])))
    lines.append(draw(st.sampled_from(["dense 2 softmax", "dense 1 sigmoid", "dense 3"])))
    return "\n".join(lines) + "\n"


HYPOTHESIS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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

STRUCTURE = """\
model structure
input image 3x8x8
block basic(c) {
  conv c 3x3 pad=same -> relu
}
basic 4
residual { conv 4 3x3 pad=same
  shortcut { conv 4 1x1 } }
concat { branch { conv 2 1x1 }; branch { conv 3 1x1 } }
add { branch { conv 2 1x1 }; branch { conv 2 3x3 pad=same } }
flatten
dense 10 softmax
"""


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


# --- initializers --------------------------------------------------------------------

FAN_IN, FAN_OUT = 400, 300  # a dense 300 on a vector 400: weight (300, 400)


def dense_weight(init: str, bias_init: str | None = None) -> nn.Linear:
    extra = f" bias_init={bias_init}" if bias_init else ""
    module = compiled(f"input vector {FAN_IN}\ndense {FAN_OUT} init={init}{extra}\n").build(seed=0)
    return module.dense_1


def _std(limit_or_std: float, uniform: bool) -> float:
    return limit_or_std / math.sqrt(3) if uniform else limit_or_std


@pytest.mark.parametrize("init, mean, std, bound", [
    ("normal(0.5, 0.2)", 0.5, 0.2, None),
    ("uniform(-0.3, 0.1)", -0.1, 0.4 / math.sqrt(12), (-0.3, 0.1)),
    ("truncated_normal(0, 0.1)", 0.0, 0.1 * 0.87962566103423978, (-0.2, 0.2)),
    ("lecun_normal", 0.0, math.sqrt(1 / FAN_IN), 2 * math.sqrt(1 / FAN_IN) / 0.87962566103423978),
    ("lecun_uniform", 0.0, _std(math.sqrt(3 / FAN_IN), True), math.sqrt(3 / FAN_IN)),
    ("glorot_normal", 0.0, math.sqrt(2 / (FAN_IN + FAN_OUT)),
     2 * math.sqrt(2 / (FAN_IN + FAN_OUT)) / 0.87962566103423978),
    ("glorot_uniform", 0.0, _std(math.sqrt(6 / (FAN_IN + FAN_OUT)), True), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_uniform", 0.0, _std(math.sqrt(6 / (FAN_IN + FAN_OUT)), True), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("he_normal", 0.0, math.sqrt(2 / FAN_IN), 2 * math.sqrt(2 / FAN_IN) / 0.87962566103423978),
    ("kaiming_uniform", 0.0, _std(math.sqrt(6 / FAN_IN), True), math.sqrt(6 / FAN_IN)),
    ("variance_scaling(2, fan_out, uniform)", 0.0, _std(math.sqrt(6 / FAN_OUT), True), math.sqrt(6 / FAN_OUT)),
    ("variance_scaling(3, fan_avg, untruncated_normal)", 0.0, math.sqrt(3 / ((FAN_IN + FAN_OUT) / 2)), None),
    ("variance_scaling(0.5, fan_out, truncated_normal)", 0.0, math.sqrt(0.5 / FAN_OUT),
     2 * math.sqrt(0.5 / FAN_OUT) / 0.87962566103423978),
    ("variance_scaling(0.5, fan_out, normal)", 0.0, math.sqrt(0.5 / FAN_OUT),  # Keras: "normal" is truncated
     2 * math.sqrt(0.5 / FAN_OUT) / 0.87962566103423978),
])
def test_initializer_distribution(init, mean, std, bound):
    w = dense_weight(init).weight.detach()
    assert w.mean().item() == pytest.approx(mean, abs=4 * std / math.sqrt(w.numel()) + 1e-4)
    assert w.std().item() == pytest.approx(std, rel=0.02)
    if isinstance(bound, tuple):
        assert w.min().item() >= bound[0] and w.max().item() <= bound[1]
    elif bound is not None:
        assert w.abs().max().item() <= bound + 1e-7
        assert w.abs().max().item() > 0.9 * bound  # the tails reach the bound


@pytest.mark.parametrize("init, value", [("zeros", 0.0), ("ones", 1.0), ("constant(0.3)", 0.3)])
def test_constant_initializers(init, value):
    layer = dense_weight(init, bias_init=init)
    assert torch.all(layer.weight == value) and torch.all(layer.bias == value)


def test_orthogonal_initializer():
    w = dense_weight("orthogonal(2.0)").weight.detach().double()  # (300, 400): orthogonal rows
    torch.testing.assert_close(w @ w.T, 4 * torch.eye(FAN_OUT, dtype=torch.float64), atol=1e-4, rtol=0)


def test_conv_and_embedding_fans_follow_keras():
    conv = compiled("input image 16x12x12\nconv 64 5x5 init=he_normal\n").build(seed=0).conv2d_1.weight
    assert conv.std().item() == pytest.approx(math.sqrt(2 / (16 * 25)), rel=0.03)  # fan_in = 16 * 5 * 5
    conv = compiled("input image 16x12x12\nconv 64 5x5 init=variance_scaling(1, fan_out, uniform)\n").build(seed=0)
    assert conv.conv2d_1.weight.abs().max().item() <= math.sqrt(3 / (64 * 25))  # fan_out = 64 * 5 * 5
    table = compiled("input tokens 5 vocab=1000\nembedding 64 init=lecun_uniform\n").build(seed=0).embedding_1.weight
    limit = math.sqrt(3 / 1000)  # Keras: an embedding's fan_in is its vocabulary
    assert table.abs().max().item() <= limit and table.abs().max().item() > 0.95 * limit


def test_bias_initializer_and_default_initialization():
    layer = dense_weight("zeros", bias_init="normal(1, 0.01)")
    assert abs(layer.bias.mean().item() - 1) < 0.01
    default = compiled(f"input vector {FAN_IN}\ndense {FAN_OUT}\n").build(seed=0).dense_1.weight
    bound = 1 / math.sqrt(FAN_IN)  # PyTorch's own kaiming_uniform(a=sqrt(5)) for nn.Linear
    assert default.abs().max().item() <= bound and default.abs().max().item() > 0.95 * bound


def test_orthogonal_bias_is_a_spec_error():
    with pytest.raises(SpecError, match="orthogonal"):
        compiled("input vector 4\ndense 3 bias_init=orthogonal\n").build()


def test_recurrent_kernels_take_keras_roles():
    """init= acts on the input kernels, recurrent_init= on the hidden-to-hidden ones (Keras)."""
    module = compiled("input sequence 5x8\nlstm 16 layers=2 init=zeros recurrent_init=orthogonal bias_init=ones "
                      "recurrent_regularizer=l2(0.5)\n").build()
    lstm = module.lstm_1
    assert torch.all(lstm.weight_ih_l0 == 0) and torch.all(lstm.weight_ih_l1 == 0)
    hh = lstm.weight_hh_l1.detach().double()  # (64, 16): orthonormal columns
    torch.testing.assert_close(hh.T @ hh, torch.eye(16, dtype=torch.float64), atol=1e-5, rtol=0)
    assert torch.all(lstm.bias_ih_l0 == 1) and torch.all(lstm.bias_hh_l1 == 1)
    expected = 0.5 * (lstm.weight_hh_l0.square().sum() + lstm.weight_hh_l1.square().sum())
    torch.testing.assert_close(module.regularization_loss(), expected)


@pytest.mark.parametrize("kind", [k.name for k in REGISTRY.kinds()])
def test_weight_roles_name_every_parameter(kind):
    """A kind's entry names the role of every parameter its module holds (options reach
    weights by role, never by guessing from PyTorch's names); structural kinds hold none."""
    entry = REGISTRY[kind]
    if entry.layout is not None:
        assert entry.weights == NO_WEIGHTS
        return
    model, _ = _first_valid(entry.example or kind)
    modules = dict(model.build().named_modules())
    paths = [path for layer in model.info.layers if layer.node.kind == kind
             for path, _ in modules[layer.path].named_parameters()]
    assert [path for path in paths if entry.weights.role(path) is None] == []
    assert (entry.weights is not TORCH_NAMED_WEIGHTS) or not paths, "a built-in kind declares its roles"


ROLES_PLUGIN = '''
"""A plugin kind whose parameter names say nothing of their roles: its entry says them."""
import torch
from torch import nn

from spec_compiler.layers import Count, LayerKind, LayerParams, WeightRoles, register
from spec_compiler.options import WeightOptions


class Affine(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.gain_matrix = nn.Parameter(torch.zeros(features, features))
        self.offset = nn.Parameter(torch.zeros(features))

    def forward(self, x):
        return x @ self.gain_matrix.T + self.offset


class AffineParams(LayerParams, WeightOptions):
    pass


for name, roles in (("affine_roles_test", WeightRoles(kernel=("gain_matrix",), bias=("offset",))),
                    ("affine_unnamed_roles_test", WeightRoles(kernel=("gain_matrix",)))):
    register(LayerKind(
        name=name, params=AffineParams, shape=lambda p, x: x, count=lambda p, x, y: Count(x.dims[-1] ** 2 + x.dims[-1]),
        build=lambda p, x, y: Affine(x.dims[-1]), weights=roles, doc="x W^T + b", example=name,
    ))
'''


def test_roles_not_names_decide_which_options_a_parameter_takes(tmp_path):
    plugin = tmp_path / "roles_plugin.py"
    plugin.write_text(ROLES_PLUGIN)
    model = compile_source("input vector 3\naffine_roles_test init=ones bias_init=constant(0.5) regularizer=l1(0.1)\n",
                           "test.spec", plugins=[str(plugin)])
    module = model.build()
    layer = module.affine_roles_test_1
    assert torch.all(layer.gain_matrix == 1) and torch.all(layer.offset == 0.5)
    torch.testing.assert_close(module.regularization_loss(), 0.1 * layer.gain_matrix.abs().sum())
    unnamed = compile_source("input vector 3\naffine_unnamed_roles_test bias_init=zeros\n", "test.spec",
                             plugins=[str(plugin)])
    with pytest.raises(TypeError, match="do not name its parameter `offset`"):
        unnamed.build()


def test_kernel_ops_are_the_operators_int8_export_quantizes():
    spam = spec_compiler.load(Path(__file__).resolve().parent.parent / "specs" / "spam_lstm.spec")
    assert kernel_ops(spam.info.kinds) == ["Gather", "Gemm", "LSTM", "MatMul"]
    assert kernel_ops(compiled("input sequence 5x8\nbidirectional { gru 4 }\nbatchnorm\n").info.kinds) == ["GRU"]


def test_bidirectional_copy_gets_the_same_options():
    model = compiled("input sequence 5x8\nbidirectional { gru 4 init=ones regularizer=l1(0.5) frozen=true }\n")
    module = model.build()
    layer = module.bidirectional_1
    for direction in (layer.forward_layer, layer.backward_layer):
        assert torch.all(direction.weight_ih_l0 == 1)
        assert not direction.weight_ih_l0.requires_grad
    assert module.regularization_loss().item() == 0  # frozen weights add no penalty (Keras)
    for direction in (layer.forward_layer, layer.backward_layer):
        direction.weight_ih_l0.requires_grad_(True)  # unfrozen for fine-tuning
    expected = sum(0.5 * p.abs().sum() for n, p in layer.named_parameters() if "weight_ih" in n)
    torch.testing.assert_close(module.regularization_loss(), expected)
    for direction in (layer.forward_layer, layer.backward_layer):
        direction.weight_ih_l0.requires_grad_(False)
    total, trainable = counted(module)
    assert (total, trainable) == (model.summary()["total_params"], model.summary()["trainable_params"])


# --- regularizers --------------------------------------------------------------------

def test_regularization_loss_is_the_keras_sum():
    model = compiled(
        "input image 2x6x6\n"
        "conv 3 3x3 regularizer=l1_l2(0.01, 0.02) bias_regularizer=l2(0.5)\n"
        "flatten\n"
        "dense 4 regularizer=l1(0.03)\n"
        "dense 2 bias_regularizer=l1(0.1)\n"
    )
    module = model.build(seed=0)
    conv, d1, d2 = module.conv2d_1, module.dense_1, module.dense_2
    expected = (0.01 * conv.weight.abs().sum() + 0.02 * conv.weight.square().sum() + 0.5 * conv.bias.square().sum()
                + 0.03 * d1.weight.abs().sum() + 0.1 * d2.bias.abs().sum())
    loss = module.regularization_loss()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert conv.weight.grad is not None and d2.weight.grad is None


def test_built_module_pickles_with_its_options(tmp_path):
    module = compiled("input vector 6\ndense 5 regularizer=l2(0.1) constraint=max_norm(1)\ndense 2 sigmoid\n").build()
    torch.save(module, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    torch.testing.assert_close(loaded.regularization_loss(), module.regularization_loss())
    loaded.apply_constraints()
    assert loaded.final_activation == "sigmoid"


def test_regularization_loss_is_zero_without_regularizers():
    loss = compiled(STRUCTURE).build().regularization_loss()
    assert loss.shape == () and loss.item() == 0.0


# --- constraints ---------------------------------------------------------------------

def _step_and_constrain(source: str, steps: int = 3) -> SpecModule:
    model = compiled(source)
    module = model.build(seed=0)
    optimizer = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=5.0)
    for _ in range(steps):
        x = sample(model.info.ir.input.type, 8, 5)
        loss = (module(x) ** 2).sum() - 10 * module(x).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        module.apply_constraints()
    return module


def _row_norms(w: torch.Tensor) -> torch.Tensor:
    return w.detach().flatten(1).norm(dim=1)


def test_max_norm_holds_after_a_step():
    module = _step_and_constrain("input vector 6\ndense 5 constraint=max_norm(0.5)\n"
                                 "dense 3 constraint=max_norm(0.2, axis=0)\n")
    assert _row_norms(module.dense_1.weight).max().item() <= 0.5 + 1e-5
    assert module.dense_2.weight.detach().norm(dim=0).max().item() <= 0.2 + 1e-5


def test_conv_max_norm_is_per_filter():
    module = _step_and_constrain("input image 3x6x6\nconv 4 3x3 constraint=max_norm(1)\nflatten\n")
    assert _row_norms(module.conv2d_1.weight).max().item() <= 1 + 1e-5


def test_unit_norm_holds_after_a_step():
    module = _step_and_constrain("input vector 6\ndense 5 constraint=unit_norm\n")
    torch.testing.assert_close(_row_norms(module.dense_1.weight), torch.ones(5), atol=1e-5, rtol=0)


def test_non_neg_holds_after_a_step():
    module = _step_and_constrain("input vector 6\ndense 5 constraint=non_neg bias_constraint=non_neg\n")
    assert module.dense_1.weight.min().item() >= 0 and module.dense_1.bias.min().item() >= 0


def test_min_max_norm_holds_after_a_step():
    module = _step_and_constrain("input vector 6\ndense 5 constraint=min_max_norm(0.5, 0.7)\n")
    norms = _row_norms(module.dense_1.weight)
    assert norms.min().item() >= 0.5 - 1e-5 and norms.max().item() <= 0.7 + 1e-5


def test_min_max_norm_rate_moves_part_of_the_way():
    module = compiled("input vector 6\ndense 5 constraint=min_max_norm(2, 3, rate=0.5)\n").build(seed=0)
    before = _row_norms(module.dense_1.weight)
    module.apply_constraints()
    after = _row_norms(module.dense_1.weight)
    torch.testing.assert_close(after, 0.5 * before.clamp(2, 3) + 0.5 * before, rtol=1e-5, atol=1e-5)


def test_constraint_axis_out_of_range_is_a_spec_error():
    with pytest.raises(SpecError, match="axis"):
        compiled("input vector 4\ndense 3 constraint=max_norm(1, axis=5)\n").build()


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


# --- emitted source ------------------------------------------------------------------

EMIT_SPECS = [p for p in SPECS if spec_compiler.load(p).summary()["flops"] < BIG_FLOPS]


def _compare_emitted(model, namespace_class) -> None:
    built = model.build(seed=1).eval()
    emitted = namespace_class().eval()
    assert list(emitted.state_dict()) == list(built.state_dict())
    assert counted(emitted) == counted(built)  # frozen layers too
    built.train(), emitted.train()
    assert [m.training for m in emitted.modules()] == [m.training for m in built.modules()]
    built.eval(), emitted.eval()
    emitted.load_state_dict(built.state_dict())
    for batch in (1, 3):
        x = sample(model.info.ir.input.type, batch, 9)
        with torch.no_grad():
            torch.testing.assert_close(emitted(x), built(x), atol=1e-6, rtol=0, equal_nan=True)
            torch.testing.assert_close(emitted.forward_logits(x), built.forward_logits(x), atol=1e-6, rtol=0,
                                       equal_nan=True)  # sqrt, log of random inputs
    assert emitted.final_activation == built.final_activation


@pytest.mark.parametrize("path", EMIT_SPECS, ids=[p.stem for p in EMIT_SPECS])
def test_emitted_source_matches_the_built_module(path):
    """Outputs equal to 1e-6 for the same weights (the big ImageNet specs: below)."""
    model = spec_compiler.load(path)
    text = emit_source(model)
    namespace = load_source(text)
    class_name = next(name for name, value in namespace.items()
                      if isinstance(value, type) and value.__module__ == "specc_emitted"
                      and "final_activation" in vars(value))
    _compare_emitted(model, namespace[class_name])


BIG_SPECS = [p for p in SPECS if p not in EMIT_SPECS]


@pytest.mark.parametrize("path", BIG_SPECS, ids=[p.stem for p in BIG_SPECS])
def test_big_specs_emit_the_same_parameters(path):
    """emit_source executes its own output on the meta device and checks every
    state_dict key and shape; the class has the spec's name."""
    model = spec_compiler.load(path)
    namespace = load_source(emit_source(model))
    with torch.device("meta"):
        emitted = next(v for v in namespace.values() if isinstance(v, type) and "final_activation" in vars(v))()
    assert counted(emitted) == (model.summary()["total_params"], model.summary()["trainable_params"])


TAGGER = """\
model tagger
input tokens ? vocab=40
embedding 8 constraint=max_norm(1)
bidirectional merge=sum { gru 6 return_sequences=true init=orthogonal }
timedistributed { dense 5 relu -> dense 3 softmax }
"""
NAMED = """\
model sequence
input vector 6
dense 4 name=train relu frozen=true
batchnorm frozen=true
dense 3 name=forward_logits
block head(n) {
  dense n
  sigmoid
}
head 2 name=eval
"""


@pytest.mark.parametrize("source, name", [(STRUCTURE, "Structure"), (TAGGER, "Tagger"), (NAMED, "SequenceModel")])
def test_emitted_source_matches_for_structures(source, name):
    model = compiled(source)
    _compare_emitted(model, load_source(emit_source(model))[name])


def test_emit_torch_cli_writes_an_importable_standalone_file(tmp_path):
    lenet = Path(__file__).resolve().parent.parent / "specs" / "lenet5.spec"
    target = tmp_path / "lenet_model.py"
    result = CliRunner().invoke(cli_main, ["compile", str(lenet), "--emit", "torch", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in ("torch", "__future__") for line in imports), imports
    assert "spec_compiler" not in text
    spec = importlib.util.spec_from_file_location("lenet_model", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules["lenet_model"] = module
    try:
        spec.loader.exec_module(module)
        _compare_emitted(spec_compiler.load(lenet), module.Lenet5)
    finally:
        sys.modules.pop("lenet_model", None)


@settings(HYPOTHESIS, max_examples=10)
@given(st.one_of(image_specs(), sequence_specs()))
def test_random_specs_emit_matching_source(source):
    model = compiled(source)
    namespace = load_source(emit_source(model))
    name = {"random_image": "RandomImage", "random_text": "RandomText"}.get(source.split()[1], "RandomSequence")
    _compare_emitted(model, namespace[name])


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
    _compare_emitted(model, load_source(text)["Plugged"])

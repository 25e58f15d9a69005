"""Weight options on the built module: initializers (Keras' definitions and fans),
weight roles (which parameters each option reaches, as the registry entry says),
regularizers and constraints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from lowering_checks import STRUCTURE, compiled, counted, first_valid, sample
from torch import nn

import spec_compiler
from spec_compiler import REGISTRY, SpecError, compile_source
from spec_compiler.backends.torch_build import SpecModule
from spec_compiler.layers.base import NO_WEIGHTS, TORCH_NAMED_WEIGHTS, kernel_ops

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
    model, _ = first_valid(entry.example or kind)
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
    spam = spec_compiler.load(Path(__file__).resolve().parents[2] / "specs" / "spam_lstm.spec")
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

"""A graph spec's PyTorch module (SpecGraph): inputs in spec order, outputs in `output`
order, each layer registered once (a shared layer's second use runs the same module)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from graph_models import siamese, two_head
from lowering_checks import compiled, counted

import spec_compiler
from spec_compiler.backends.torch_build import SpecGraph, SpecModule
from spec_compiler.backends.torch_source import emit_source, load_source

ROOT = Path(__file__).resolve().parents[2]


def images(seed: int, batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_a_chain_still_builds_the_chain_module():
    module = compiled("input vector 4\ndense 2 softmax\n").build()
    assert type(module) is SpecModule


def test_a_shared_layer_is_one_module_with_one_set_of_parameters():
    model = siamese()
    module = model.build(seed=0)
    assert isinstance(module, SpecGraph)
    assert list(module.state_dict()) == ["enc.weight", "enc.bias", "dense_1.weight", "dense_1.bias"]
    assert counted(module) == (model.info.count.total,) * 2 == (4 * 64 + 4 + 8 + 1,) * 2
    assert module.plan[0].body._modules["enc"] is module.plan[1].body._modules["enc_2"] is module.enc


def test_the_siamese_output_is_symmetric_in_what_the_towers_compute():
    module = siamese().build(seed=0).eval()
    left, right = images(1), images(2)
    with torch.no_grad():
        same = module(left, left)
        code = torch.tanh(module.enc(left.flatten(1)))
        expected = torch.sigmoid(module.dense_1(torch.cat([code, code], dim=1)))
    torch.testing.assert_close(same, expected)
    assert module(left, right).shape == (3, 1)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        module(left)


def test_a_gradient_step_through_both_uses_moves_the_one_encoder():
    module = siamese().build(seed=0)
    left, right = images(1), images(2)

    def similarity(code_left, code_right):
        return torch.sigmoid(module.dense_1(torch.cat([code_left, code_right], dim=1))).sum()

    def code(x):
        return torch.tanh(module.enc(x.flatten(1)))

    both = torch.autograd.grad(module(left, right).sum(), module.enc.weight)[0]
    through_left = torch.autograd.grad(similarity(code(left), code(right).detach()), module.enc.weight)[0]
    through_right = torch.autograd.grad(similarity(code(left).detach(), code(right)), module.enc.weight)[0]
    assert through_left.abs().sum() > 0 and through_right.abs().sum() > 0
    torch.testing.assert_close(both, through_left + through_right)  # one weight, both towers' gradients
    before = module.enc.weight.detach().clone()
    module(left, right).sum().backward()
    torch.optim.SGD(module.parameters(), lr=0.1).step()
    assert not torch.equal(module.enc.weight, before)
    assert len(list(module.parameters())) == 4


def test_two_heads_come_out_in_output_order_with_their_activations():
    module = two_head().build(seed=0).eval()
    assert module.final_activations == {"digit": "softmax", "parity": "sigmoid"}
    assert module.final_activation is None  # several outputs: one activation each
    x = images(3)
    with torch.no_grad():
        digit, parity = module(x)
        digit_logits, parity_logits = module.forward_logits(x)
    assert digit.shape == (3, 10) and parity.shape == (3, 1)
    torch.testing.assert_close(digit, digit_logits.softmax(-1))
    torch.testing.assert_close(parity, torch.sigmoid(parity_logits))


@pytest.mark.parametrize("make", [siamese, two_head], ids=["siamese", "two_head"])
def test_emitted_source_computes_what_the_graph_module_does(make):
    model = make()
    text = emit_source(model)
    class_name = "SiameseTest" if make is siamese else "TwoHeadTest"
    emitted = load_source(text)[class_name]()
    built = model.build(seed=0).eval()
    emitted.load_state_dict(built.state_dict())
    emitted.eval()
    inputs = [images(seed) for seed in range(len(model.ir.inputs))]
    with torch.no_grad():
        for method in ("forward", "forward_logits"):
            ours, theirs = getattr(built, method)(*inputs), getattr(emitted, method)(*inputs)
            torch.testing.assert_close(theirs, ours)
    assert emitted.final_activations == built.final_activations


def test_emitted_siamese_calls_the_one_encoder_for_both_towers():
    text = emit_source(siamese())
    assert text.count("self.enc = ") == 1 and text.count("self.enc(") == 4  # two towers, forward and logits


def test_the_siamese_spec_s_towers_are_one_set_of_weights_that_a_step_moves_for_both():
    model = spec_compiler.load(ROOT / "specs" / "siamese.spec")
    module = model.build(seed=0)
    assert not any(key.startswith("enc_2.") for key in module.state_dict())
    assert counted(module)[0] == model.summary()["total_params"]
    left, right = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    towers = [step.body for step in module.plan[:2]]  # a = left -> tower name=enc; b = right -> enc
    with torch.no_grad():
        before = [tower(left) for tower in towers]
    torch.testing.assert_close(before[0], before[1])  # one function: the same image, the same code
    optimizer = torch.optim.SGD(module.parameters(), lr=0.5)
    torch.nn.functional.binary_cross_entropy(module(left, right), torch.ones(4, 1)).backward()
    optimizer.step()
    with torch.no_grad():
        after = [tower(left) for tower in towers]
    assert not torch.allclose(after[0], before[0]) and not torch.allclose(after[1], before[1])
    torch.testing.assert_close(after[0], after[1])

"""The CNN specs of the zoo against plain PyTorch references (tests/zoo/reference_cnn.py).

For each spec: the reference module holds exactly the parameters the spec's first line
states (so the figure is not taken on trust), and, given the same weights (mapped by
order, every shape checked), the spec's built module computes the same output to 1e-5.
The forward runs on a smaller input where the network allows it (global pooling heads
take any size; U-Net's smallest tile is 188x188); the figures need no forward. Their
ONNX export at full size is tests/test_export.py's (SPECC_SLOW=1 for the big ones).
"""

from __future__ import annotations

import re

import pytest
import reference_cnn as reference
import torch
from conftest import ROOT
from test_specs import stated_figures

import spec_compiler

# spec name: (reference factory, the input line written in the spec, the one the forward test uses)
ZOO = {
    "efficientnet_b0": (reference.efficientnet_b0, "input image 3x224x224", "input image 3x64x64"),
    "mobilenet_v3_large": (lambda: reference.mobilenet_v3("large"), "input image 3x224x224", "input image 3x64x64"),
    "mobilenet_v3_small": (lambda: reference.mobilenet_v3("small"), "input image 3x224x224", "input image 3x64x64"),
    "shufflenet_v2_x1_0": (reference.shufflenet_v2_x1_0, "input image 3x224x224", "input image 3x64x64"),
    "regnet_y_400mf": (reference.regnet_y_400mf, "input image 3x224x224", "input image 3x64x64"),
    "dcgan_generator": (reference.dcgan_generator, "input vector 100", "input vector 100"),
    "unet": (reference.UNet, "input image 1x572x572", "input image 1x188x188"),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec_text(name: str, input_line: str | None = None) -> str:
    text = (ROOT / "specs" / f"{name}.spec").read_text(encoding="utf-8")
    written = ZOO[name][1]
    assert f"\n{written}\n" in text, f"{name}.spec no longer starts from `{written}`"
    return text.replace(f"\n{written}\n", f"\n{input_line}\n") if input_line else text


def weights(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and batchnorm statistics in registration order (not the step counters)."""
    return [(k, v) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")]


def randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """He-initialized kernels (so that values keep their scale through a deep network and a
    wrong layer shows in the output) and non-trivial batchnorm: random scale, shift and
    running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                if layer.bias is not None:
                    layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=generator))
            elif isinstance(layer, torch.nn.BatchNorm2d):
                channels = layer.num_features
                layer.weight.copy_(0.8 + 0.4 * torch.rand(channels, generator=generator))
                layer.bias.copy_(0.1 * torch.randn(channels, generator=generator))
                layer.running_mean.copy_(0.1 * torch.randn(channels, generator=generator))
                layer.running_var.copy_(0.8 + 0.4 * torch.rand(channels, generator=generator))


def copy_by_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    ours, theirs = weights(source), weights(target)
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    mapped = {}
    for (our_key, value), (their_key, slot) in zip(ours, theirs):
        assert value.shape == slot.shape, f"{our_key} {tuple(value.shape)} -> {their_key} {tuple(slot.shape)}"
        mapped[their_key] = value
    target.load_state_dict(mapped, strict=False)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in mapped.items())


@pytest.mark.parametrize("name", ZOO)
def test_the_reference_holds_the_stated_figure(name):
    figures = stated_figures(ROOT / "specs" / f"{name}.spec")
    model = ZOO[name][0]()
    trainable = sum(p.numel() for p in model.parameters())
    statistics = sum(b.numel() for k, b in model.named_buffers() if k.endswith(("running_mean", "running_var")))
    assert trainable == figures.get("trainable", figures["total"])
    assert trainable + statistics == figures["total"]


@pytest.mark.parametrize("name", ZOO)
def test_spec_computes_what_the_reference_computes(name):
    small = ZOO[name][2]
    model = spec_compiler.compile_source(spec_text(name, small), f"{name}.spec")
    built = model.build(seed=0).eval()
    randomize(built)
    ref = ZOO[name][0]().eval()
    copy_by_order(built, ref)
    x = torch.randn(1, *model.ir.input.type.dims, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = built.forward_logits(x)  # the specs end in softmax; torchvision's models give logits
        theirs = ref(x.view(1, 100, 1, 1) if name == "dcgan_generator" else x)
    assert ours.shape == theirs.shape
    assert theirs.abs().max() > 0.1, "a vanishing output would compare equal too easily"
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_the_efficientnet_walkthrough_is_the_spec():
    examples = re.findall(r"```spec\n(.*?)```", (ROOT / "docs" / "language.md").read_text(encoding="utf-8"), re.S)
    walkthrough = next(e for e in examples if e.startswith("# specs/efficientnet_b0.spec, the whole file"))
    assert walkthrough.split("\n", 1)[1] == spec_text("efficientnet_b0").split("\n", 1)[1]

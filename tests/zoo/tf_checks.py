"""Shared checks of the transformer-era zoo tests (ConvNeXt, ViT): a built spec's weights
copied into a plain-PyTorch reference, and the two forwards compared."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def randomize(module: nn.Module, seed: int = 0) -> None:
    """Move the parameters that start at a constant away from it: a layer scale of 1e-6 or
    a zero class token would hide a mistake in what they multiply or where they go.
    Convolution and linear kernels keep their (random) initialization."""
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in module.named_parameters():
        if parameter.dim() <= 1 and name.endswith(("weight", "gamma")):  # norm scales, layer scales
            parameter.copy_(torch.rand(parameter.shape, generator=generator) + 0.5)
        elif parameter.dim() <= 1 or "positional_embedding" in name:  # biases, class token, positions
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)


def copy_into_reference(module: nn.Module, reference: nn.Module, keys: list[str]) -> None:
    """Load the spec module's state_dict into `reference`, pairing the spec's tensors (in
    their order) with the reference's `keys`; every pair must hold as many values, and
    every reference tensor is loaded (strict)."""
    ours, theirs = module.state_dict(), reference.state_dict()
    assert len(ours) == len(keys) == len(theirs), (len(ours), len(keys), len(theirs))
    mapped = {}
    for (name, value), key in zip(ours.items(), keys):
        assert value.numel() == theirs[key].numel(), (name, tuple(value.shape), key, tuple(theirs[key].shape))
        mapped[key] = value.reshape(theirs[key].shape)
    reference.load_state_dict(mapped)


def assert_same_logits(module: nn.Module, reference: nn.Module, x: torch.Tensor, tolerance: float = 1e-5) -> None:
    """The spec's logits (before its final softmax) equal the reference's output."""
    module.eval(), reference.eval()
    with torch.no_grad():
        ours, theirs = module.forward_logits(x), reference(x)
    assert ours.shape == theirs.shape
    assert theirs.abs().max() > 10 * tolerance  # not a comparison of near-zeros
    torch.testing.assert_close(ours, theirs, atol=tolerance, rtol=tolerance)

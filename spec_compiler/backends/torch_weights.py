"""Initializers, regularizers and constraints on PyTorch tensors, as Keras defines them.

The spec side (names, arguments, validation) is in spec_compiler/options.py; this is
the arithmetic. Conventions:

- Fans follow Keras' `_compute_fans` on the weight's PyTorch layout, where the output
  units come first: a dense weight (out, in) has fan_in = in and fan_out = out; a conv
  weight (out, in/groups, *kernel) has fan_in = in/groups * receptive field and
  fan_out = out * receptive field (the same numbers Keras finds on its (*kernel, in,
  out) layout); an embedding table (vocab, dim) is laid out input-first, as Keras'.
  A depthwise kernel (channels, 1, *kernel) therefore has fan_in = receptive field
  (each output sees one channel), where Keras counts fan_in = channels * receptive field.
- `truncated_normal(mean, std)`: a normal(mean, std) redrawn outside mean +- 2 std.
- `variance_scaling(scale, mode, distribution)`: scale / n with n the fan_in, fan_out or
  their average; truncated_normal uses std = sqrt(scale / n) / 0.87962566103423978 (the
  std of a unit normal truncated to +-2; Keras reads distribution="normal" the same way),
  untruncated_normal std = sqrt(scale / n), uniform the limit sqrt(3 * scale / n).
- lecun_* = variance_scaling(1, fan_in), glorot_* = (1, fan_avg), he_* = (2, fan_in),
  with *_normal truncated and *_uniform uniform.
- `orthogonal(gain)`: an orthogonal matrix on the weight flattened to (out, rest).
- Regularizers: l1 * sum|w| + l2 * sum w^2.
- Constraints (epsilon 1e-7, as Keras'): max_norm w * clip(n, 0, max) / (eps + n);
  unit_norm w / (eps + n); min_max_norm w * (rate * clip(n, min, max) + (1 - rate) * n)
  / (eps + n); non_neg w * (w >= 0). n is the L2 norm over every axis but the first
  (the output unit, or the token of an embedding), so each unit's incoming weights are
  constrained; a vector (bias) is normed as a whole. An explicit `axis` names an axis of
  the PyTorch tensor.
"""

from __future__ import annotations

import math
from typing import Any

import torch

TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2]
EPSILON = 1e-7  # Keras' backend.epsilon()


def compute_fans(shape: tuple[int, ...], input_first: bool = False) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight with PyTorch's layout (output units first)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return (shape[0], shape[1]) if input_first else (shape[1], shape[0])
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


class InitializerError(ValueError):
    """An initializer cannot apply to a tensor (orthogonal on a vector)."""


@torch.no_grad()
def initialize(tensor: torch.Tensor, spec: Any, role: str = "kernel") -> None:
    """Fill `tensor` in place according to an initializer spec (options.INITIALIZERS).
    `role` is the tensor's weight role (layers/base.py WeightRoles): an embedding table
    is laid out input first, which its fans follow."""
    kind = spec.kind
    if kind == "zeros":
        tensor.zero_()
    elif kind == "ones":
        tensor.fill_(1.0)
    elif kind == "constant":
        tensor.fill_(spec.value)
    elif kind == "normal":
        tensor.normal_(spec.mean, spec.std)
    elif kind == "uniform":
        tensor.uniform_(spec.min, spec.max)
    elif kind == "truncated_normal":
        _truncated_normal(tensor, spec.mean, spec.std)
    elif kind == "orthogonal":
        if tensor.dim() < 2:
            raise InitializerError(f"orthogonal needs a weight of rank 2 or more, got a {tensor.dim()}-d tensor")
        torch.nn.init.orthogonal_(tensor, gain=spec.gain)
    else:
        scale, mode, distribution = _variance_scaling_args(spec)
        variance_scaling(tensor, scale, mode, distribution, input_first=role == "embedding")


_NAMED_SCALING = {
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
}


def _variance_scaling_args(spec: Any) -> tuple[float, str, str]:
    if spec.kind == "variance_scaling":
        return spec.scale, spec.mode, spec.distribution
    return _NAMED_SCALING[spec.kind]


@torch.no_grad()
def variance_scaling(tensor: torch.Tensor, scale: float, mode: str, distribution: str,
                     input_first: bool = False) -> None:
    fan_in, fan_out = compute_fans(tuple(tensor.shape), input_first)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, n)
    if distribution in ("truncated_normal", "normal"):  # Keras reads "normal" as truncated (Keras 1 compatibility)
        _truncated_normal(tensor, 0.0, math.sqrt(scale) / TRUNCATED_NORMAL_STD)
    elif distribution == "untruncated_normal":
        tensor.normal_(0.0, math.sqrt(scale))
    else:
        limit = math.sqrt(3.0 * scale)
        tensor.uniform_(-limit, limit)


def _truncated_normal(tensor: torch.Tensor, mean: float, std: float) -> None:
    torch.nn.init.trunc_normal_(tensor, mean, std, mean - 2.0 * std, mean + 2.0 * std)


def penalty(tensor: torch.Tensor, spec: Any) -> torch.Tensor:
    """A regularizer's loss term (options.REGULARIZERS)."""
    l1 = getattr(spec, "l1", 0.0) if spec.kind in ("l1", "l1_l2") else 0.0
    l2 = getattr(spec, "l2", 0.0) if spec.kind in ("l2", "l1_l2") else 0.0
    term = tensor.new_zeros(())
    if l1:
        term = term + l1 * tensor.abs().sum()
    if l2:
        term = term + l2 * tensor.square().sum()
    return term


def constraint_axes(tensor: torch.Tensor, axis: int | None) -> tuple[int, ...]:
    """The axes a norm constraint sums over."""
    if axis is not None:
        if not -tensor.dim() <= axis < tensor.dim():
            raise InitializerError(f"axis {axis} is out of range for a {tensor.dim()}-d weight {tuple(tensor.shape)}")
        return (axis % tensor.dim(),)
    if tensor.dim() <= 1:
        return tuple(range(tensor.dim()))
    return tuple(range(1, tensor.dim()))


def check_constraint(tensor: torch.Tensor, spec: Any) -> None:
    if spec.kind != "non_neg":
        constraint_axes(tensor, spec.axis)


@torch.no_grad()
def project(tensor: torch.Tensor, spec: Any) -> None:
    """Apply a constraint in place (options.CONSTRAINTS)."""
    if spec.kind == "non_neg":
        tensor.mul_((tensor >= 0).to(tensor.dtype))
        return
    axes = constraint_axes(tensor, spec.axis)
    norms = tensor.square().sum(dim=axes, keepdim=True).sqrt() if axes else tensor.abs()
    if spec.kind == "unit_norm":
        tensor.div_(EPSILON + norms)
        return
    if spec.kind == "max_norm":
        desired = norms.clamp(0.0, spec.max_value)
    else:  # min_max_norm
        desired = spec.rate * norms.clamp(spec.min_value, spec.max_value) + (1.0 - spec.rate) * norms
    tensor.mul_(desired / (EPSILON + norms))

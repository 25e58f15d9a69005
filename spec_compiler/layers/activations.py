"""Activations: standalone layers (`relu`, `leaky_relu 0.2`) and trailing words
(`dense 120 relu`). Each is a registry entry with no parameters and the identity
shape rule; softmax-like ones act on the last axis (features), as in Keras."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..shapes import TensorType
from .base import LayerKind, LayerParams, Slot, register, require_float


class NoParams(LayerParams):
    pass


class LeakyReluParams(LayerParams):
    negative_slope: Annotated[float, Field(ge=0)] = 0.01


class EluParams(LayerParams):
    alpha: Annotated[float, Field(gt=0)] = 1.0


class SoftmaxParams(LayerParams):
    axis: int = -1


def _same(p, x: TensorType) -> TensorType:
    require_float(x, "an activation")
    return x


def _axis_check(p, x: TensorType) -> TensorType:
    require_float(x, "an activation")
    from ..shapes import ShapeError

    if not -x.rank <= p.axis < x.rank:
        raise ShapeError(f"axis {p.axis} is out of range for a rank-{x.rank} input {x}")
    return x


def _torch(factory_name: str, **fixed):
    """A builder that makes torch.nn.<factory_name>(**fixed)."""

    def build(p, x, y):
        from torch import nn

        return getattr(nn, factory_name)(**fixed)

    return build


def _softmax_axis(p, x: TensorType) -> int:
    """The torch dim for a batch-first tensor (the spec's axes exclude the batch)."""
    return p.axis if p.axis < 0 else p.axis + 1


def _build_softmax(p, x, y):
    from torch import nn

    return nn.Softmax(dim=_softmax_axis(p, x))


def _build_log_softmax(p, x, y):
    from torch import nn

    return nn.LogSoftmax(dim=_softmax_axis(p, x))


def _build_linear(p, x, y):
    from torch import nn

    return nn.Identity()


def _build_leaky(p, x, y):
    from torch import nn

    return nn.LeakyReLU(p.negative_slope)


def _build_elu(p, x, y):
    from torch import nn

    return nn.ELU(p.alpha)


def _build_hard_sigmoid(p, x, y):
    from torch import nn

    return nn.Hardsigmoid()


_SIMPLE = {
    "relu": ("ReLU", (), "max(0, x)"),
    "relu6": ("ReLU6", (), "min(max(0, x), 6), as in MobileNet"),
    "selu": ("SELU", (), "scaled ELU (self-normalizing networks)"),
    "gelu": ("GELU", (), "Gaussian error linear unit (exact erf form)"),
    "silu": ("SiLU", ("swish",), "x * sigmoid(x), also called swish"),
    "tanh": ("Tanh", (), "hyperbolic tangent"),
    "sigmoid": ("Sigmoid", (), "1 / (1 + exp(-x))"),
    "softplus": ("Softplus", (), "log(1 + exp(x))"),
}

for _name, (_factory, _aliases, _doc) in _SIMPLE.items():
    register(LayerKind(
        name=_name, aliases=_aliases, params=NoParams, shape=_same, build=_torch(_factory),
        doc=_doc, example=_name, category="activation", is_activation=True,
    ))

register(LayerKind(
    name="hard_sigmoid", params=NoParams, shape=_same, build=_build_hard_sigmoid,
    doc="piecewise-linear sigmoid: relu6(x + 3) / 6 (PyTorch's and Keras 3's definition)",
    example="hard_sigmoid", category="activation", is_activation=True,
))
register(LayerKind(
    name="linear", aliases=("identity",), params=NoParams, shape=_same, build=_build_linear,
    doc="the identity: no activation", example="linear", category="activation", is_activation=True,
))
register(LayerKind(
    name="leaky_relu", params=LeakyReluParams, slots=(Slot("negative_slope"),), shape=_same, build=_build_leaky,
    doc="x if x > 0 else negative_slope * x (default slope 0.01)", example="leaky_relu 0.2",
    category="activation", is_activation=True,
))
register(LayerKind(
    name="elu", params=EluParams, slots=(Slot("alpha"),), shape=_same, build=_build_elu,
    doc="x if x > 0 else alpha * (exp(x) - 1)", example="elu 1.0", category="activation", is_activation=True,
))
register(LayerKind(
    name="softmax", params=SoftmaxParams, slots=(Slot("axis"),), shape=_axis_check, build=_build_softmax,
    doc="normalized exponentials along an axis (default the last: features)", example="softmax",
    category="activation", is_activation=True,
))
register(LayerKind(
    name="log_softmax", params=SoftmaxParams, slots=(Slot("axis"),), shape=_axis_check, build=_build_log_softmax,
    doc="log of softmax, computed stably", example="log_softmax", category="activation", is_activation=True,
))

# Activations whose output a classifier's fused loss can take the place of.
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")

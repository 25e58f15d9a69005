"""Activations: standalone layers (`relu`, `leaky_relu 0.2`) and trailing words
(`dense 120 relu`). Each is a registry entry with no parameters and the identity
shape rule; softmax-like ones act on the last axis (features), as in Keras."""

from __future__ import annotations

from typing import Annotated, Literal

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


class GeluParams(LayerParams):
    # "tanh": the approximation GPT-2 and BERT's original code use (PyTorch's approximate="tanh")
    approximate: Literal["none", "tanh"] = "none"


def _same(p, x: TensorType) -> TensorType:
    require_float(x, "an activation")
    return x


def _unchanged(p, x: TensorType) -> TensorType:
    """Any input, token ids included: `identity` passes everything on."""
    return x


def _axis_check(p, x: TensorType) -> TensorType:
    require_float(x, "an activation")
    from ..shapes import ShapeError

    if not -x.rank <= p.axis < x.rank:
        raise ShapeError(f"axis {p.axis} is out of range for a rank-{x.rank} input {x}")
    return x


def _torch(class_name: str):
    """A builder that makes torch.nn.<class_name>(), for activations without options."""

    def build(p, x, y):
        from torch import nn

        return getattr(nn, class_name)()

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


def _build_leaky(p, x, y):
    from torch import nn

    return nn.LeakyReLU(p.negative_slope)


def _build_elu(p, x, y):
    from torch import nn

    return nn.ELU(p.alpha)


register(LayerKind(
    name="relu", params=NoParams, shape=_same, build=_torch("ReLU"),
    doc="max(0, x)", example="relu", category="activation", is_activation=True,
))
register(LayerKind(
    name="relu6", params=NoParams, shape=_same, build=_torch("ReLU6"),
    doc="min(max(0, x), 6), as in MobileNet", example="relu6", category="activation", is_activation=True,
))
register(LayerKind(
    name="selu", params=NoParams, shape=_same, build=_torch("SELU"),
    doc="scaled ELU (self-normalizing networks)", example="selu", category="activation", is_activation=True,
))
def _gelu_build(p: GeluParams, x, y):
    from torch import nn

    return nn.GELU(approximate=p.approximate)


register(LayerKind(
    name="gelu", params=GeluParams, shape=_same, build=_gelu_build,
    doc="Gaussian error linear unit: the exact erf form, or approximate=tanh (GPT-2's)", example="gelu",
    category="activation", is_activation=True,
))
register(LayerKind(
    name="silu", aliases=("swish",), params=NoParams, shape=_same, build=_torch("SiLU"),
    doc="x * sigmoid(x), also called swish", example="silu", category="activation", is_activation=True,
))
register(LayerKind(
    name="tanh", params=NoParams, shape=_same, build=_torch("Tanh"),
    doc="hyperbolic tangent", example="tanh", category="activation", is_activation=True,
))
register(LayerKind(
    name="sigmoid", params=NoParams, shape=_same, build=_torch("Sigmoid"),
    doc="1 / (1 + exp(-x))", example="sigmoid", category="activation", is_activation=True,
))
register(LayerKind(
    name="softplus", params=NoParams, shape=_same, build=_torch("Softplus"),
    doc="log(1 + exp(x))", example="softplus", category="activation", is_activation=True,
))
register(LayerKind(
    name="hard_sigmoid", aliases=("hardsigmoid",), params=NoParams, shape=_same, build=_torch("Hardsigmoid"),
    doc="piecewise-linear sigmoid: relu6(x + 3) / 6 (PyTorch's and Keras 3's definition), as MobileNetV3's "
        "squeeze-and-excitation gate uses",
    example="hard_sigmoid", category="activation", is_activation=True,
))
register(LayerKind(
    name="hardswish", aliases=("hard_swish",), params=NoParams, shape=_same, build=_torch("Hardswish"),
    doc="x * relu6(x + 3) / 6, MobileNetV3's cheap swish (Howard et al. 2019)",
    example="hardswish", category="activation", is_activation=True,
))
register(LayerKind(
    name="mish", params=NoParams, shape=_same, build=_torch("Mish"),
    doc="x * tanh(softplus(x)) (Misra 2019)", example="mish", category="activation", is_activation=True,
))
register(LayerKind(
    name="linear", params=NoParams, shape=_same, build=_torch("Identity"),
    doc="the identity as an activation word: `dense 10 linear` is `dense 10`", example="linear",
    category="activation", is_activation=True,
))
register(LayerKind(
    name="identity", params=NoParams, shape=_unchanged, build=_torch("Identity"),
    doc="passes its input on unchanged: the skip branch of a merge (`add { branch { identity }; branch { ... } }`; "
        "an empty `branch { }` is the same)", example="identity", category="activation", is_activation=True,
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

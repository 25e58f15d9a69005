"""Normalization: batchnorm, layernorm, groupnorm, instancenorm and AlexNet's local
response normalization.

Which axis is normalized follows Keras' default `axis=-1` read on specc's layouts:
the features. That is the channels C of a CxHxW image (Keras' channels-last images
have them last), and the last axis F of a TxF sequence or an F vector.

Keras conventions, because the course material uses them:
- `momentum` is Keras' (0.99 by default: running = 0.99 * running + 0.01 * batch).
  PyTorch's momentum is the weight of the new batch, so the module gets 1 - momentum
  (0.01); a PyTorch user's `momentum=0.1` is written `momentum=0.9` here, and a momentum
  below 0.5 is warned about as PyTorch's habit.
- `eps` defaults to Keras' 1e-3 (PyTorch's default is 1e-5).
- `center=true` (a learned shift beta, PyTorch's `bias`) and `scale=true` (a learned
  scale gamma, PyTorch's `weight`) can each be turned off, as in Keras. `init=`,
  `regularizer=`, `constraint=` apply to gamma; `bias_init=` and the other `bias_*`
  options to beta.
- A trailing activation word applies after the normalization: `batchnorm relu` is
  `batchnorm -> relu`.
- Parameter counts: batchnorm holds gamma and beta (trainable, C each) and the running
  mean and variance (non-trainable, C each): 4C in all, as Keras' summary reports.
  (PyTorch's `num_batches_tracked` counter is not a parameter and is not counted.)

FLOPs: one multiply-add per value for the batch, layer, group and instance norms (the normalization folded
into a scale and a shift, as at inference); `size` multiply-adds per value for lrn (its
window of squares).
"""

from __future__ import annotations

from math import prod
from typing import Annotated

from pydantic import Field, model_validator

from ..options import WeightOptions
from ..shapes import ShapeError, TensorType, describe, known_size
from .base import ActivationName, Advice, Count, LayerKind, LayerParams, Slot, WeightRoles, divisors, register, require_float

PositiveFloat = Annotated[float, Field(gt=0)]
# Keras' momentum is the old running value's weight (0.99 by default, 0.9 at least in
# practice); PyTorch's is the new batch's (0.1). Below this, it is read as PyTorch's habit.
PYTORCH_LOOKING_MOMENTUM = 0.5

_GAMMA_OPTIONS = ("init", "regularizer", "constraint")
_BETA_OPTIONS = ("bias_init", "bias_regularizer", "bias_constraint")


class _AffineOptions(LayerParams, WeightOptions):
    eps: PositiveFloat = 1e-3
    center: bool = True
    scale: bool = True
    activation: ActivationName | None = None

    @model_validator(mode="after")
    def _options_have_a_target(self):
        for flag, what, options in (("scale", "gamma", _GAMMA_OPTIONS), ("center", "beta", _BETA_OPTIONS)):
            if not getattr(self, flag):
                given = [o for o in options if getattr(self, o) is not None]
                if given:
                    raise ValueError(f"with {flag}=false has no {what}, so {given[0]}= does not apply")
        if self.init is not None and self.init.kind == "orthogonal":
            raise ValueError("init=orthogonal needs a weight of rank 2 or more, but gamma (the scale) is a vector")
        return self


# gamma is PyTorch's `weight`, beta its `bias`.
AFFINE_WEIGHTS = WeightRoles(scale=("weight",), bias=("bias",))


def _features(x: TensorType, kind: str) -> int:
    """The normalized axis' size: channels of an image, the last axis otherwise."""
    require_float(x, kind)
    if x.rank == 3:
        return known_size(x, 0, kind, "channels")
    if x.rank in (1, 2):
        return known_size(x, -1, kind)
    hint = ("normalize each frame of a TxCxHxW video with `timedistributed { " + kind + " }`"
            if x.rank == 4 else None)
    raise ShapeError(f"{kind} expects an image CxHxW, a sequence TxF or a vector, got {describe(x)}", hint,
                     about_input=True)


def _same_shape(kind: str):
    def shape(p, x: TensorType) -> TensorType:
        _features(x, kind)
        return x

    return shape


def _affine_count(p: _AffineOptions, features: int) -> int:
    return features * (int(p.center) + int(p.scale))


def _per_value_flops(p, x: TensorType, y: TensorType) -> int:
    return x.numel_estimate()


# --- batchnorm -------------------------------------------------------------------

class BatchNormParams(_AffineOptions):
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.99

    def advice(self) -> tuple[Advice, ...]:
        """PyTorch's momentum (0.1, the weight of the new batch) means the opposite under
        Keras' convention (the weight of the old running value), which specc follows."""
        if self.momentum >= PYTORCH_LOOKING_MOMENTUM:
            return ()
        keras = round(1 - self.momentum, 12)
        return (Advice(
            "momentum",
            f"momentum={self.momentum:g} looks like PyTorch's: specc follows Keras' convention, where the "
            f"running statistics keep {self.momentum:.0%} of their value at each batch "
            f"(running = {self.momentum:g} * running + {keras:g} * batch)",
            f"PyTorch's momentum={self.momentum:g} is written momentum={keras:g} here (the default is 0.99)",
        ),)


def _batchnorm_count(p: BatchNormParams, x: TensorType, y: TensorType) -> Count:
    features = _features(x, "batchnorm")
    return Count(_affine_count(p, features), 2 * features)


def _batchnorm_build(p: BatchNormParams, x: TensorType, y: TensorType):
    from ..modules.norm import batch_norm

    return batch_norm(x.rank, _features(x, "batchnorm"), p.momentum, p.eps, p.center, p.scale)


register(LayerKind(
    name="batchnorm", aliases=("batch_norm", "bn"), params=BatchNormParams,
    shape=_same_shape("batchnorm"), count=_batchnorm_count, flops=_per_value_flops, build=_batchnorm_build,
    weights=AFFINE_WEIGHTS,
    category="normalization", example="batchnorm relu",
    doc="batch normalization (Ioffe & Szegedy 2015) of the features: the channels of a CxHxW image "
        "(PyTorch's BatchNorm2d), the features of a TxF sequence over every step, or a vector's. "
        "Keras conventions: momentum=0.99 (PyTorch gets 1 - momentum; below 0.5, PyTorch's habit, it warns), "
        "eps=1e-3, center= (beta) and "
        "scale= (gamma); counts gamma and beta as trainable and the running mean and variance as "
        "non-trainable parameters (4C in all); `batchnorm relu` applies relu after it",
))


# --- layernorm -------------------------------------------------------------------

class LayerNormParams(_AffineOptions):
    pass


def _layernorm_count(p: LayerNormParams, x: TensorType, y: TensorType) -> Count:
    return Count(_affine_count(p, _features(x, "layernorm")))


def _layernorm_build(p: LayerNormParams, x: TensorType, y: TensorType):
    from ..modules.norm import layer_norm

    return layer_norm(x.rank, _features(x, "layernorm"), p.eps, p.center, p.scale)


register(LayerKind(
    name="layernorm", aliases=("layer_norm",), params=LayerNormParams,
    shape=_same_shape("layernorm"), count=_layernorm_count, flops=_per_value_flops, build=_layernorm_build,
    weights=AFFINE_WEIGHTS,
    category="normalization", example="layernorm",
    doc="layer normalization (Ba et al. 2016) of each step's features: the last axis of a TxF sequence or "
        "vector, the channels at every position of a CxHxW image (Keras' axis=-1 on channels-last images); "
        "eps=1e-3 (Keras'), center= and scale=; 2F trainable parameters",
))


# --- groupnorm and instancenorm ------------------------------------------------------
# Statistics per sample over groups of channels (Wu & He 2018) and over each channel alone
# (Ulyanov et al. 2016): no batch statistics, so no running ones either, and the same
# computation in training and inference. A sequence's channels are its features, as for
# conv1d: statistics over time.

def _channels(x: TensorType, kind: str, vectors: bool) -> int:
    require_float(x, kind)
    if x.rank == 3:
        return known_size(x, 0, kind, "channels")
    if x.rank == 2 or (vectors and x.rank == 1):
        return known_size(x, -1, kind, "channels")
    wanted = "an image CxHxW, a sequence TxF or a vector" if vectors else "an image CxHxW or a sequence TxF"
    hint = ("a vector's features have no positions to take statistics over: use `layernorm` or `batchnorm`"
            if x.rank == 1 else f"normalize each frame of a TxCxHxW video with `timedistributed {{ {kind} }}`")
    raise ShapeError(f"{kind} expects {wanted}, got {describe(x)}", hint, about_input=True)


def _positions(x: TensorType) -> int | None:
    """Positions per channel (height x width, or time steps; 1 for a vector); None when a
    run-time length makes it unknown."""
    spatial = x.dims[1:] if x.rank == 3 else x.dims[:-1]
    return prod(spatial) if all(isinstance(d, int) for d in spatial) else None


class GroupNormParams(_AffineOptions):
    groups: Annotated[int, Field(gt=0)]


def _groupnorm_shape(p: GroupNormParams, x: TensorType) -> TensorType:
    channels = _channels(x, "groupnorm", vectors=True)
    if channels % p.groups:
        raise ShapeError(f"groupnorm groups={p.groups} must divide the {channels} channels of its input {x}",
                         f"each group normalizes channels/groups channels together: use groups= one of "
                         f"{divisors(channels)}", about_input=True)
    if _positions(x) == 1 and channels == p.groups:
        raise ShapeError(f"groupnorm groups={p.groups} leaves one value per group of its input {x}",
                         "a single value has no statistics (PyTorch refuses to train it): use fewer groups, "
                         "or `layernorm` on a vector", about_input=True)
    return x


def _groupnorm_count(p: GroupNormParams, x: TensorType, y: TensorType) -> Count:
    return Count(_affine_count(p, _channels(x, "groupnorm", vectors=True)))


def _groupnorm_build(p: GroupNormParams, x: TensorType, y: TensorType):
    from ..modules.norm import group_norm

    return group_norm(x.rank, p.groups, _channels(x, "groupnorm", vectors=True), p.eps, p.center, p.scale)


register(LayerKind(
    name="groupnorm", aliases=("group_norm",), params=GroupNormParams, slots=(Slot("groups"),),
    shape=_groupnorm_shape, count=_groupnorm_count, flops=_per_value_flops, build=_groupnorm_build,
    weights=AFFINE_WEIGHTS, category="normalization", example="groupnorm 4",
    doc="group normalization (Wu & He 2018): the channels split into `groups` groups, each normalized over "
        "its channels and positions, per sample (PyTorch's GroupNorm); on a TxF sequence the features are the "
        "channels; groups must divide them. eps=1e-3 (Keras'), center= and scale=; 2C trainable parameters, "
        "no running statistics",
))


class InstanceNormParams(_AffineOptions):
    pass


def _instancenorm_shape(p: InstanceNormParams, x: TensorType) -> TensorType:
    _channels(x, "instancenorm", vectors=False)
    if _positions(x) == 1:
        raise ShapeError(f"instancenorm needs more than one position per channel, got {describe(x)}",
                         "it normalizes each channel over its positions, and one value has no statistics (PyTorch "
                         "refuses it): use `layernorm` or `batchnorm` here", about_input=True)
    return x


def _instancenorm_count(p: InstanceNormParams, x: TensorType, y: TensorType) -> Count:
    return Count(_affine_count(p, _channels(x, "instancenorm", vectors=False)))


def _instancenorm_build(p: InstanceNormParams, x: TensorType, y: TensorType):
    from ..modules.norm import instance_norm

    return instance_norm(x.rank, _channels(x, "instancenorm", vectors=False), p.eps, p.center, p.scale)


register(LayerKind(
    name="instancenorm", aliases=("instance_norm",), params=InstanceNormParams,
    shape=_instancenorm_shape, count=_instancenorm_count, flops=_per_value_flops, build=_instancenorm_build,
    weights=AFFINE_WEIGHTS, category="normalization", example="instancenorm",
    doc="instance normalization (Ulyanov et al. 2016): each channel of each sample normalized over its "
        "positions (style transfer, GANs); on a TxF sequence each feature over time. eps=1e-3, center= and "
        "scale= (true, as Keras' GroupNormalization(groups=-1); PyTorch's InstanceNorm2d has no affine "
        "parameters by default: write center=false scale=false); 2C trainable parameters, no running statistics",
))


# --- local response normalization --------------------------------------------------

class LrnParams(LayerParams):
    size: Annotated[int, Field(gt=0)] = 5
    alpha: Annotated[float, Field(ge=0)] = 1e-4
    beta: Annotated[float, Field(ge=0)] = 0.75
    k: PositiveFloat = 2.0

    @model_validator(mode="after")
    def _odd(self):
        if self.size % 2 == 0:
            raise ValueError(f"size must be odd (a window centered on each channel), got {self.size}")
        return self


def _lrn_shape(p: LrnParams, x: TensorType) -> TensorType:
    require_float(x, "lrn")
    if x.rank != 3:
        raise ShapeError(
            f"lrn normalizes across the channels of an image CxHxW, got {describe(x)}",
            "for sequences and vectors use `layernorm` or `batchnorm`", about_input=True,
        )
    return x


def _lrn_flops(p: LrnParams, x: TensorType, y: TensorType) -> int:
    return x.numel_estimate() * p.size


def _lrn_build(p: LrnParams, x: TensorType, y: TensorType):
    from ..modules.norm import LocalResponseNorm

    return LocalResponseNorm(p.size, p.alpha, p.beta, p.k)


register(LayerKind(
    name="lrn", aliases=("local_response_norm",), params=LrnParams, slots=(Slot("size"),),
    shape=_lrn_shape, flops=_lrn_flops, build=_lrn_build, category="normalization", example="lrn 5",
    doc="local response normalization across channels (AlexNet, Krizhevsky et al. 2012): "
        "b_c = a_c / (k + alpha * sum of a^2 over the `size` channels centered on c) ^ beta, "
        "defaults size=5, alpha=1e-4, beta=0.75, k=2 (the paper's). alpha is the paper's and "
        "TensorFlow's, not divided by size as in PyTorch's LocalResponseNorm; no parameters",
))

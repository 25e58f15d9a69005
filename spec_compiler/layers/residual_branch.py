"""Layers that end the residual branch of a very deep network: layer_scale and drop_path.

In ConvNeXt, Swin and CaiT a block is `x + drop_path(layer_scale(branch(x)))`:

- `layer_scale` (Touvron et al. 2021, CaiT) multiplies each channel by a learned factor
  that starts tiny (1e-6 in ConvNeXt), so every block starts close to the identity: C
  parameters, the channels of a CxHxW image or the features of a TxF sequence or vector.
- `drop_path` (stochastic depth, Huang et al. 2016) drops the whole branch of a sample
  with probability `rate` while training, scaling the kept ones by 1 / (1 - rate)
  (torchvision's StochasticDepth, mode "row"); the identity in evaluation. Put it last
  inside the `residual { }` body, so the sample keeps its shortcut.

FLOPs: layer_scale one multiply per value; drop_path none.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..shapes import ShapeError, TensorType, describe, known_size
from .base import Count, LayerKind, LayerParams, Slot, WeightRoles, register, require_float

# --- layer_scale ---------------------------------------------------------------------

class LayerScaleParams(LayerParams):
    initial: float = 1e-6


def _scaled_channels(x: TensorType) -> int:
    require_float(x, "layer_scale")
    if x.rank == 3:
        return known_size(x, 0, "layer_scale", "channels")
    if x.rank in (1, 2):
        return known_size(x, -1, "layer_scale")
    raise ShapeError(f"layer_scale expects an image CxHxW, a sequence TxF or a vector, got {describe(x)}",
                     about_input=True)


def _layer_scale_shape(p: LayerScaleParams, x: TensorType) -> TensorType:
    _scaled_channels(x)
    return x


def _layer_scale_count(p: LayerScaleParams, x: TensorType, y: TensorType) -> Count:
    return Count(_scaled_channels(x))


def _layer_scale_flops(p: LayerScaleParams, x: TensorType, y: TensorType) -> int:
    return x.numel_estimate()


def _layer_scale_build(p: LayerScaleParams, x: TensorType, y: TensorType):
    from ..modules.residual_branch import LayerScale

    return LayerScale(_scaled_channels(x), p.initial, channels_first=x.rank == 3)


register(LayerKind(
    name="layer_scale", aliases=("layerscale",), params=LayerScaleParams, slots=(Slot("initial"),),
    shape=_layer_scale_shape, count=_layer_scale_count, flops=_layer_scale_flops, build=_layer_scale_build,
    weights=WeightRoles(scale=("gamma",)), example="layer_scale 1e-6",
    doc="multiplies each channel (of a CxHxW image; the features of a TxF sequence or vector) by a learned "
        "factor starting at `initial` (default 1e-6, ConvNeXt's; CaiT's LayerScale): C parameters. It ends a "
        "residual branch, so that a deep network starts close to the identity",
))


# --- drop_path -----------------------------------------------------------------------

class DropPathParams(LayerParams):
    rate: Annotated[float, Field(ge=0, lt=1)]


def _drop_path_shape(p: DropPathParams, x: TensorType) -> TensorType:
    require_float(x, "drop_path")
    return x


def _drop_path_build(p: DropPathParams, x: TensorType, y: TensorType):
    from ..modules.residual_branch import DropPath

    return DropPath(p.rate)


register(LayerKind(
    name="drop_path", aliases=("stochastic_depth",), params=DropPathParams, slots=(Slot("rate"),),
    shape=_drop_path_shape, build=_drop_path_build, example="residual { conv 3 3x3 pad=same -> drop_path 0.1 }",
    doc="stochastic depth (Huang et al. 2016): while training, zeroes the whole input of a sample with "
        "probability `rate` and scales the others by 1 / (1 - rate) (torchvision's StochasticDepth, mode row); "
        "the identity in evaluation. Put it last in a `residual { }` body: a dropped sample keeps its shortcut",
))

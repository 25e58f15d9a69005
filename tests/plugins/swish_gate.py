"""An example specc plugin: a gated dense layer (a GLU-style gate, Dauphin et al. 2017).

    gated_dense U:  y = (x W + b) * sigmoid(x V + c)

W and V are FxU, b and c of size U: 2 * (F*U + U) parameters. Like `dense`, it takes a
vector F or a TxF sequence (applied at every step) and an optional trailing activation.

Load it by naming it on the command line; a .spec file never names code:

    specc compile model.spec --plugin tests/plugins/swish_gate.py

Importing this module registers the kind. Torch is imported only by the builder, so
`specc compile` stays torch-free with the plugin loaded.
"""

from __future__ import annotations

from math import prod
from typing import Annotated

from pydantic import Field

from spec_compiler.layers import Count, LayerKind, LayerParams, Slot, register
from spec_compiler.layers.base import ActivationName, require_float
from spec_compiler.options import WeightOptions
from spec_compiler.shapes import ShapeError, TensorType, describe


class GatedDenseParams(LayerParams, WeightOptions):
    units: Annotated[int, Field(gt=0)]
    activation: ActivationName | None = None


def _shape(p: GatedDenseParams, x: TensorType) -> TensorType:
    require_float(x, "gated_dense")
    if x.rank not in (1, 2):
        raise ShapeError(f"gated_dense expects a vector or a sequence TxF, got {describe(x)}",
                         "add `flatten` before it", about_input=True)
    return x.with_dims(*x.dims[:-1], p.units)


def _count(p: GatedDenseParams, x: TensorType, y: TensorType) -> Count:
    return Count(2 * (x.dims[-1] * p.units + p.units))


def _flops(p: GatedDenseParams, x: TensorType, y: TensorType) -> int:
    steps = prod(d if isinstance(d, int) else 1 for d in x.dims[:-1])
    return steps * 2 * x.dims[-1] * p.units + steps * p.units


_GATED_DENSE = None


def gated_dense_class():
    """The nn.Module class, made on first use so that importing the plugin needs no torch."""
    global _GATED_DENSE
    if _GATED_DENSE is None:
        import torch
        from torch import nn

        class GatedDense(nn.Module):
            def __init__(self, features: int, units: int):
                super().__init__()
                self.value = nn.Linear(features, units)
                self.gate = nn.Linear(features, units)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.value(x) * torch.sigmoid(self.gate(x))

        _GATED_DENSE = GatedDense
    return _GATED_DENSE


def _build(p: GatedDenseParams, x: TensorType, y: TensorType):
    return gated_dense_class()(x.dims[-1], p.units)


register(LayerKind(
    name="gated_dense", params=GatedDenseParams, slots=(Slot("units"),), shape=_shape, count=_count,
    flops=_flops, build=_build, category="plugin", example="gated_dense 64",
    doc="(plugin tests/plugins/swish_gate.py) dense layer with a sigmoid gate: "
        "(x W + b) * sigmoid(x V + c); 2*(F*U + U) parameters",
))

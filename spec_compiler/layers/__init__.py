"""The layer catalogue. Importing this package registers every built-in kind."""

from . import (  # noqa: F401  (registration)
    activations,
    attention,
    conv,
    core,
    functions,
    norm,
    recurrent,
    residual_branch,
    spatial,
    structure,
    transformer,
)
from .base import REGISTRY, BodyLayout, Count, LayerKind, LayerParams, Slot, WeightRoles, register

__all__ = ["REGISTRY", "BodyLayout", "Count", "LayerKind", "LayerParams", "Slot", "WeightRoles", "register"]

"""The layer catalogue. Importing this package registers every built-in kind."""

from . import activations, attention, conv, core, functions, norm, recurrent, structure  # noqa: F401  (registration)
from .base import REGISTRY, BodyLayout, Count, LayerKind, LayerParams, Slot, WeightRoles, register

__all__ = ["REGISTRY", "BodyLayout", "Count", "LayerKind", "LayerParams", "Slot", "WeightRoles", "register"]

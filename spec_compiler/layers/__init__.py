"""The layer catalogue. Importing this package registers every built-in kind."""

from . import activations, attention, conv, core, functions, norm, recurrent, structure  # noqa: F401  (registration)
from .base import REGISTRY, Count, LayerKind, LayerParams, Slot, register

__all__ = ["REGISTRY", "Count", "LayerKind", "LayerParams", "Slot", "register"]

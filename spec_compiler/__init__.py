"""specc: a declarative model-spec compiler.

    import spec_compiler
    model = spec_compiler.load("specs/lenet5.spec")
    model.summary()["total_params"]   # 61706

The names below are imported on first use (PEP 562), so `import spec_compiler` stays
quick and `from spec_compiler import runtime` loads only what the runtime needs (no
pydantic schemas, no parser, no torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from .errors import SpecError
    from .layers import REGISTRY, Count, LayerKind, LayerParams, Slot, register
    from .limits import Limits
    from .model import Model, compile_source, load

# Public name -> the module (relative to this package) that defines it.
LAZY_NAMES = {
    "SpecError": "errors",
    "Limits": "limits",
    "REGISTRY": "layers", "Count": "layers", "LayerKind": "layers", "LayerParams": "layers", "Slot": "layers",
    "register": "layers",
    "Model": "model", "compile_source": "model", "load": "model",
}

__all__ = [
    "REGISTRY", "Count", "LayerKind", "LayerParams", "Limits", "Model", "Slot", "SpecError",
    "compile_source", "load", "register", "__version__",
]


def __getattr__(name: str):
    module = LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'spec_compiler' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *LAZY_NAMES})

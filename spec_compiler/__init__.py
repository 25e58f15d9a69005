"""specc: a declarative model-spec compiler.

    import spec_compiler
    model = spec_compiler.load("specs/lenet5.spec")
    model.summary()["total_params"]   # 61706
"""

from .errors import SpecError
from .inference import Limits
from .layers import REGISTRY, Count, LayerKind, LayerParams, Slot, register
from .model import Model, compile_source, load
from .version import __version__

__all__ = [
    "REGISTRY", "Count", "LayerKind", "LayerParams", "Limits", "Model", "Slot", "SpecError",
    "compile_source", "load", "register", "__version__",
]

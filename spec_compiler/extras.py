"""Optional dependencies: which install line brings what, and the one check that says so.

`pip install specc` is enough to compile, format, draw, serve editors (`specc lsp`),
predict and use `spec_compiler.runtime`. Training, evaluation, ONNX export, building a
PyTorch module and `specc compile --emit torch` need the `train` extra (PyTorch, onnx,
safetensors, scikit-learn for the bundled digits, ...). A command that needs a missing
extra stops before it does anything, naming the line that brings it:

    specc train needs PyTorch: pip install 'specc[train]'

(exit code 2: this installation cannot run the command as written; see docs/cli.md).
"""

from __future__ import annotations

import importlib.util

from .errors import UsageError

# The name a user knows each importable module by (its PyPI project or its usual name).
PROJECT_NAMES = {
    "torch": "PyTorch",
    "onnx": "onnx",
    "onnxscript": "onnxscript",
    "onnx_ir": "onnx-ir",
    "safetensors": "safetensors",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "rich": "rich",
    "pygls": "pygls",
    "lsprotocol": "lsprotocol",
}


# What each command needs beyond the base install (all of it comes with its extra).
TORCH = ("torch",)
TRAINING = ("torch", "safetensors", "sklearn", "matplotlib", "rich")
EVALUATION = ("torch", "safetensors", "sklearn")
EXPORT = ("torch", "onnx", "onnxscript", "onnx_ir", "safetensors")
LANGUAGE_SERVER = ("pygls", "lsprotocol")


class MissingExtra(UsageError):
    """A command needs a package that an optional extra of specc installs."""


def is_installed(module: str) -> bool:
    """Whether `module` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing, or a module blocked in sys.modules
        return False


def require_extra(extra: str, *modules: str, needed_by: str) -> None:
    """Raise MissingExtra unless every one of `modules` is installed.

    `needed_by` names what asked (`specc train`, `Model.build()`), so the message reads
    `specc train needs PyTorch: pip install 'specc[train]'`."""
    for module in modules:
        if not is_installed(module):
            raise MissingExtra(f"{needed_by} needs {PROJECT_NAMES.get(module, module)}: pip install 'specc[{extra}]'")

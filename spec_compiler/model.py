"""The Python API: `spec_compiler.load(path)` returns a checked `Model`.

Its verbs mirror what Keras users know: summary, build, train, evaluate, export.
Torch is imported only by the verbs that need it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .elaborate import elaborate
from .errors import Diagnostic, SpecError, UsageError, render_warnings
from .inference import Limits, ModelInfo, infer
from .ir import ModelIR
from .parser import parse
from .source import read_spec_file


@dataclass(frozen=True)
class Model:
    """A spec that parsed, elaborated and passed every shape and size check."""

    info: ModelInfo
    plugins: tuple[str, ...] = ()

    @property
    def ir(self) -> ModelIR:
        return self.info.ir

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """Valid values that are probably mistakes (`batchnorm momentum=0.1`), in file order."""
        return self.ir.warnings

    def warning_text(self) -> str:
        """The warnings rendered as `specc` prints them on stderr ("" when there are none)."""
        return render_warnings(self.ir.warnings, self.ir.source)

    def summary(self) -> dict[str, Any]:
        """The same dict `specc compile --json` prints."""
        from .backends.summary import summary_dict

        return summary_dict(self.info)

    def table(self, depth: int | None = None) -> str:
        from .backends.summary import render_table

        return render_table(self.info, depth)

    def build(self, seed: int | None = None):
        """The PyTorch module (a `SpecModule`, on the CPU); `seed` makes its initialization reproducible."""
        from .backends.torch_build import build_module

        return build_module(self.info, seed)

    def train(self, **overrides):
        """Train like Keras' fit; returns a TrainResult (run_dir, history, metrics, module).

        Keys of the spec's `train { }` section override it (epochs=3, lr=1e-2, data="x.npz",
        loss="mse", ...), as do run options: device, amp, out, resume, overwrite, init_from,
        progress, stream, callbacks (spec_compiler.training.Callback subclasses; see
        spec_compiler/training/overrides.py and fit.py)."""
        from .training.fit import train

        return train(self, **overrides)

    def evaluate(self, weights, data=None, **options) -> dict:
        """Loss and metrics of a run's weights (a run folder or its weights.safetensors)."""
        from .training.evaluate import evaluate

        return evaluate(self, weights, data=data, **options)

    def export(self, path: str | Path, weights: str | Path | None = None, opset: int | None = None,
               quantize: str | None = None, external_data: bool = False, simplify: bool = False):
        """Write a verified ONNX file (see spec_compiler/export/); `weights` is a run folder
        or a .safetensors file (None: the freshly initialized network). Returns an ExportReport."""
        from .export import export_model

        return export_model(self, path, weights=weights, opset=opset, quantize=quantize, external_data=external_data,
                            simplify=simplify)


def load_plugins(plugins: Iterable[str]) -> tuple[str, ...]:
    """Import plugin modules the user named (a module name or a .py file).

    This is the only way code beyond specc's own runs: a .spec file never names code.
    """
    loaded = []
    for plugin in plugins:
        try:
            if plugin.endswith(".py"):
                path = Path(plugin).resolve()
                module_name = f"specc_plugin_{path.stem}"
                if module_name not in sys.modules:
                    spec = importlib.util.spec_from_file_location(module_name, path)
                    if spec is None or spec.loader is None:
                        raise ImportError(f"cannot load {plugin}")
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[module_name] = module
                    spec.loader.exec_module(module)
            else:
                importlib.import_module(plugin)
        except (ImportError, OSError) as error:
            raise UsageError(f"cannot load plugin `{plugin}`: {error}") from None
        loaded.append(plugin)
    return tuple(loaded)


def compile_source(source: str, path: str = "<spec>", plugins: Iterable[str] = (), limits: Limits = Limits()) -> Model:
    loaded = load_plugins(plugins)
    try:
        spec = parse(source, path)
        ir = elaborate(spec)
        try:
            return Model(infer(ir, limits), loaded)
        except SpecError as error:
            raise error.with_warnings(ir.warnings) from None
    except RecursionError:  # a last resort: the parser and elaboration limit nesting first
        raise SpecError.at(None, "the spec is nested too deeply to check",
                           "use fewer levels of bodies and blocks inside one another") from None


def load(path: str | Path, plugins: Iterable[str] = (), limits: Limits = Limits()) -> Model:
    """Parse and check a .spec file. Raises SpecError (with rendered diagnostics)."""
    return compile_source(read_spec_file(path), str(path), plugins, limits)

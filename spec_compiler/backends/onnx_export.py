"""ONNX export: the built PyTorch module, checked and verified, as one self-describing file.

What `export_model` does, in order:
1. builds the module (`Model.build()`), loads a run's weights when given (a run folder
   written by `specc train`, or a .safetensors file) and checks that every key and shape
   fits; reads the run's preprocess.json;
2. wraps the module so that the input normalization of preprocess.json (mean/std, or a
   scale) happens inside the graph; the final softmax/sigmoid stays in, so the file gives
   probabilities as `SpecModule.forward` does;
3. exports in eval mode with a batch of 2 (TorchScript exporter; the dynamo exporter is
   the fallback), a dynamic batch axis and a dynamic sequence axis where the spec has a
   named or `?` length; input and output names from the spec;
4. adds metadata_props (spec source, labels, input kind/layout/shape, normalization,
   tokenizer settings, specc version) and runs onnx.checker;
5. verifies: random inputs at two batch sizes (and two sequence lengths where dynamic),
   plus the run's validation data when the run saved some, through PyTorch and ONNX
   Runtime; a max abs difference above 1e-4 fails the export;
6. optionally quantizes to int8 (static QDQ for convolutional models, dynamic otherwise)
   and measures size, batch-1 latency and accuracy against the fp32 file;
7. writes the file atomically. When any step fails nothing is left at the output path.

Errors are `SpecError` (exit 1) for a spec, weights or data problem, `UsageError` (exit 2)
for a bad option.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import Diagnostic, SpecError, UsageError
from ..files import write_bytes_atomic
from ..inference import LayerInfo

FP32_TOLERANCE = 1e-4
DEFAULT_OPSET = 17
MIN_OPSET = 11
TORCHSCRIPT_MAX_OPSET = 20  # torch.onnx's TorchScript exporter
DYNAMO_MIN_OPSET = 18  # torch.onnx's dynamo exporter


def max_opset() -> int:
    from torch.onnx import _constants

    return max(TORCHSCRIPT_MAX_OPSET, int(getattr(_constants, "ONNX_MAX_OPSET", TORCHSCRIPT_MAX_OPSET)))


# int8: outputs are compared by the top class (argmax, or the 0.5 threshold of a single
# sigmoid) and by the mean absolute difference, not elementwise to 1e-4.
INT8_MIN_AGREEMENT = 0.90  # on the run's validation samples that fp32 decides clearly
INT8_MAX_MEAN_DIFF = 0.05  # on probabilities
INT8_MAX_RELATIVE_DIFF = 0.10  # other outputs: relative to their mean magnitude


@dataclass
class RunFiles:
    """What export reads from a run folder (see docs/CONTRACTS.md)."""

    weights: Path | None = None
    folder: Path | None = None
    preprocess: dict[str, Any] = field(default_factory=dict)
    spec_source: str | None = None

    def data(self, *names: str) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(x, y) from the first of `names` the run holds (.npz with x and optionally y)."""
        if self.folder is None:
            return None
        for name in names:
            path = self.folder / name
            if path.is_file():
                try:
                    with np.load(path, allow_pickle=False) as archive:
                        x = archive["x"] if "x" in archive.files else archive[archive.files[0]]
                        y = archive["y"] if "y" in archive.files else None
                        return np.asarray(x), (np.asarray(y) if y is not None else None)
                except (OSError, ValueError, KeyError, IndexError) as error:
                    raise SpecError.at(None, f"cannot read {path}: {error}") from None
        return None


VALIDATION_FILES = ("validation.npz", "val.npz", "data/validation.npz")
CALIBRATION_FILES = ("calibration.npz", "train_sample.npz", "train.npz", "data/train.npz")


@dataclass
class Check:
    what: str  # "random", "validation"
    shape: list[int]
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "shape": self.shape, "max_abs_diff": self.max_abs_diff}


@dataclass
class ExportReport:
    path: str
    model: str
    opset: int
    exporter: str
    input_name: str
    input_shape: list[Any]
    input_dtype: str
    output_name: str
    output_shape: list[Any]
    weights: str | None
    normalization: dict[str, Any] | None
    normalization_note: str | None
    labels: list[str] | None
    export_seconds: float
    size_bytes: int
    tolerance: float
    checks: list[Check]
    validation: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "checks"}
        out["checks"] = [c.to_dict() for c in self.checks]
        out["max_abs_diff"] = self.max_abs_diff
        return out

    def render(self) -> str:
        def shape(dims: list) -> str:
            return (" x " if any(isinstance(d, str) for d in dims) else "x").join(str(d) for d in dims)

        lines = [
            f"exported {self.model} to {self.path} ({_megabytes(self.size_bytes)}, opset {self.opset}, "
            f"{self.exporter} exporter, {self.export_seconds:.2f} s)",
            f"  input  `{self.input_name}`: {self.input_dtype} batch x {shape(self.input_shape)}",
            f"  output `{self.output_name}`: batch x {shape(self.output_shape)}",
            f"  weights: {self.weights or 'freshly initialized (no --weights: untrained)'}",
        ]
        if self.normalization:
            lines.append(f"  normalization in the graph: {_describe_norm(self.normalization)}")
        if self.normalization_note:
            lines.append(f"  note: {self.normalization_note}")
        if self.labels:
            shown = ", ".join(self.labels[:10]) + (", ..." if len(self.labels) > 10 else "")
            lines.append(f"  labels: {shown}")
        verify = "; ".join(f"{c.what} {'x'.join(map(str, c.shape))}: {c.max_abs_diff:.2e}" for c in self.checks)
        lines.append(f"  parity PyTorch vs ONNX Runtime (fp32, max abs diff <= {self.tolerance:g}): {verify}")
        if self.validation:
            v = self.validation
            text = f"  validation data: {v['samples']} samples of {v['source']}, max abs diff {v['max_abs_diff']:.2e}"
            if v.get("accuracy_torch") is not None:
                text += f", accuracy PyTorch {v['accuracy_torch']:.4f} / ONNX {v['accuracy_onnx']:.4f}"
            lines.append(text)
        else:
            lines.append("  validation data: none (no run, or the run has none): random inputs only")
        if self.quantization:
            q = self.quantization
            lines.append(f"  int8 ({q['method']}): size {_megabytes(q['fp32_bytes'])} -> {_megabytes(q['int8_bytes'])} "
                         f"({q['size_ratio']:.2f}x)")
            lines.append(f"    calibration: {q['calibration']}" if q.get("calibration") else
                         "    calibration: none (dynamic quantization computes activation ranges at run time)")
            lines.append(f"    batch-1 latency: fp32 {q['fp32_latency_ms']:.3f} ms, int8 {q['int8_latency_ms']:.3f} ms "
                         f"({q['latency_ratio']:.2f}x)")
            if q["latency_ratio"] > 1.0:
                lines.append(f"    WARNING: the int8 model is SLOWER than fp32 at batch 1 "
                             f"({q['latency_ratio']:.2f}x the latency) on this machine")
            top = "n/a (not a classifier)" if q["agreement"] is None else f"{q['agreement']:.4f}"
            if q.get("agreement_decided") is not None:
                top += f" (clear calls: {q['agreement_decided']:.4f})"
            lines.append(f"    agreement with fp32 ({q['agreement_on']}): top class {top}, "
                         f"mean abs diff {q['mean_abs_diff']:.2e}, max abs diff {q['max_abs_diff']:.2e}")
            if q.get("accuracy_fp32") is not None:
                lines.append(f"    validation accuracy: fp32 {q['accuracy_fp32']:.4f}, int8 {q['accuracy_int8']:.4f} "
                             f"({q['accuracy_change']:+.4f})")
            else:
                lines.append("    validation accuracy: not measured (no validation data in the run)")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _describe_norm(norm: dict[str, Any]) -> str:
    def short(v):
        v = np.asarray(v, dtype=np.float64).ravel()
        return f"{v[0]:.4g}" if v.size == 1 else "[" + ", ".join(f"{a:.4g}" for a in v[:4]) + (", ...]" if v.size > 4 else "]")
    return f"{norm.get('kind', 'custom')}: (x - {short(norm['mean'])}) / {short(norm['std'])}"


# --- run folders and weights ---------------------------------------------------

def resolve_run(weights: str | Path | None) -> RunFiles:
    """A run folder, or a .safetensors file (its folder is the run when it holds preprocess.json)."""
    if weights is None:
        return RunFiles()
    path = Path(weights)
    if path.is_dir():
        file = path / "weights.safetensors"
        if not file.is_file():
            raise SpecError.at(None, f"{path} holds no weights.safetensors",
                               "pass a run folder written by `specc train`, or a .safetensors file")
        folder = path
    elif path.is_file():
        file, folder = path, path.parent
    else:
        raise SpecError.at(None, f"weights not found: {path}")
    run = RunFiles(weights=file, folder=folder)
    preprocess = folder / "preprocess.json"
    if preprocess.is_file():
        try:
            data = json.loads(preprocess.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SpecError.at(None, f"cannot read {preprocess}: {error}") from None
        if not isinstance(data, dict):
            raise SpecError.at(None, f"{preprocess}: expected a JSON object")
        run.preprocess = data
    spec = folder / "model.spec"
    if spec.is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            run.spec_source = spec.read_text(encoding="utf-8")
    return run


def load_weights(module: nn.Module, run: RunFiles, spec_source: str) -> None:
    """Load a safetensors state_dict into `module`; every key and shape must fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = run.weights
    try:
        state = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise SpecError.at(None, f"{file}: not a readable safetensors file ({_first_line(error)})",
                           "pass the weights.safetensors of a run written by `specc train`") from None
    expected = module.state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    wrong = [(k, tuple(state[k].shape), tuple(expected[k].shape)) for k in sorted(set(state) & set(expected))
             if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_listing(unexpected)}")
        if wrong:
            parts.append("wrong shapes: " + _listing([f"{k} is {_dims(a)} in the file, {_dims(b)} in the model"
                                                       for k, a, b in wrong]))
        hint = "were these weights trained from this spec?"
        if run.spec_source is not None and run.spec_source.strip() != spec_source.strip():
            hint += f" The run was trained from a different spec ({run.folder / 'model.spec'})."
        raise SpecError.at(None, f"the weights in {file} do not fit the model: " + "; ".join(parts), hint)
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise SpecError.at(None, f"{file}: `{key}` holds NaN or infinite values",
                               "the training diverged; lower the learning rate or clip gradients")
    module.load_state_dict(state, strict=False)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _listing(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(f"`{i}`" if " " not in i else i for i in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


# --- normalization ---------------------------------------------------------------

def normalization_constants(norm: dict[str, Any] | None, dims: tuple, kind: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) broadcastable to one sample, for x' = (x - mean) / std; None for no normalization.

    preprocess.json's normalize entry: {"kind", "mean", "std", "axis"} (scalars, or lists
    along sample axis `axis`: channels for images, features otherwise; full-shape arrays too); {"kind": "scale", "factor"} and
    {"kind": "minmax", "min", "max"} are understood too."""
    if not norm or norm.get("kind") in (None, "none") and "mean" not in norm:
        return None
    try:
        if norm.get("mean") is not None and norm.get("std") is not None:
            mean, std = np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)
        elif "factor" in norm or "scale" in norm:
            factor = float(norm.get("factor", norm.get("scale")))
            mean, std = np.zeros((), np.float32), np.asarray(1.0 / factor, np.float32)
        elif "min" in norm and "max" in norm:
            low, high = np.asarray(norm["min"], np.float32), np.asarray(norm["max"], np.float32)
            mean, std = low, high - low
        else:
            raise ValueError("expected mean and std (or factor, or min and max)")
        axis = norm.get("axis")
        mean, std = _broadcast(mean, dims, kind, axis), _broadcast(std, dims, kind, axis)
    except (TypeError, ValueError) as error:
        raise SpecError.at(None, f"preprocess.json: cannot use the normalization {json.dumps(norm)[:200]}: {error}") from None
    if not np.all(np.isfinite(std)) or np.any(std == 0) or not np.all(np.isfinite(mean)):
        raise SpecError.at(None, "preprocess.json: the normalization has a zero or non-finite std or mean")
    return mean, std


def _broadcast(values: np.ndarray, dims: tuple, kind: str, axis: int | None = None) -> np.ndarray:
    """Shape per-channel/per-feature statistics to broadcast over one sample of `dims`.

    `axis` (the trainer's preprocess.json) is the sample axis the values run along."""
    if values.ndim == 0 or values.size == 1:
        return values.reshape(())
    if axis is not None:
        axis = int(axis)
        if not 0 <= axis < len(dims) or (isinstance(dims[axis], int) and dims[axis] != values.size):
            raise ValueError(f"{values.size} values along axis {axis} do not fit an input of "
                             f"{'x'.join(map(str, dims))}")
        shape = [1] * len(dims)
        shape[axis] = values.size
        return values.reshape(shape[axis:])
    static = all(isinstance(d, int) for d in dims)
    if static and values.size == math.prod(dims):
        return values.reshape(dims)
    if kind == "image" and values.size == dims[0]:
        return values.reshape((dims[0],) + (1,) * (len(dims) - 1))
    if values.size == dims[-1] and isinstance(dims[-1], int):
        return values.reshape((dims[-1],))
    raise ValueError(f"{values.size} values do not fit an input of {'x'.join(map(str, dims))}")


class Exported(nn.Module):
    """The graph that goes into the ONNX file: normalization, then the model."""

    def __init__(self, model: nn.Module, normalization: tuple[np.ndarray, np.ndarray] | None):
        super().__init__()
        self.model = model
        self.normalize = normalization is not None
        if normalization is not None:
            self.register_buffer("mean", torch.from_numpy(np.ascontiguousarray(normalization[0])))
            self.register_buffer("std", torch.from_numpy(np.ascontiguousarray(normalization[1])))

    def forward(self, x):
        if self.normalize:
            x = (x - self.mean) / self.std
        return self.model(x)


# --- the export ------------------------------------------------------------------

@dataclass
class Prepared:
    """Everything about a model's export that does not depend on the ONNX file."""

    wrapper: Exported
    module: nn.Module
    run: RunFiles
    input_name: str
    output_name: str
    dims: tuple
    dtype: str
    vocab: int | None
    metadata: dict[str, str]
    normalization: dict[str, Any] | None
    normalization_note: str | None
    labels: list[str] | None
    final: str | None
    output_dims: tuple = ()
    notes: list[str] = field(default_factory=list)
    data_cache: Any = None  # RunData, False (none), or None (not looked for yet)


def prepare(model, weights: str | Path | None = None, seed: int = 0) -> Prepared:
    """Build the module, load the run's weights, wrap with the normalization, and gather metadata."""
    from .. import __version__

    ir = model.ir
    run = resolve_run(weights)
    module = model.build(seed=seed)
    if run.weights is not None:
        load_weights(module, run, ir.source)
    module.eval()
    kind, ttype = ir.input.kind, ir.input.type
    dims = tuple(ttype.dims)
    pre = run.preprocess
    norm, note = pre.get("normalize"), None
    if run.weights is None:
        spec_norm = ir.train.normalize
        norm_kind = getattr(spec_norm, "kind", None)
        if norm_kind == "scale":
            norm = {"kind": "scale", "mean": 0.0, "std": 1.0 / float(spec_norm.factor)}
        elif norm_kind not in (None, "none"):
            note = (f"the spec normalizes inputs with `{norm_kind}`, whose statistics come from training data: "
                    "export with --weights RUN to put it in the graph (this file takes already normalized inputs)")
    if kind == "tokens":
        norm = None
    constants = normalization_constants(norm, dims, kind)
    if constants is not None:
        mean, std = constants
        norm = {"kind": (norm or {}).get("kind", "custom"), "mean": mean.tolist(), "std": std.tolist()}
    else:
        norm = None
    wrapper = Exported(module, constants).eval()
    final = getattr(module, "final_activation", None)
    output_name = "probabilities" if final in ("softmax", "sigmoid") else "output"
    labels = pre.get("labels") or (list(ir.train.labels) if ir.train.labels else None)
    image = pre.get("image")
    if image is None and kind == "image" and len(dims) == 3:
        image = {"channels": dims[0], "height": dims[1], "width": dims[2]}
    text = pre.get("text")
    layout = {"image": "NCHW" if len(dims) == 3 else "NCL", "sequence": "NTF", "vector": "NF",
              "tokens": "NT"}.get(kind, "N...")
    input_meta = {"name": ir.input.name, "kind": kind, "layout": layout, "shape": list(dims),
                  "dtype": "int64" if ttype.dtype == "int" else "float32", "vocab": ttype.vocab}
    info_out = model.info.output
    metadata = {
        "specc.version": __version__,
        "specc.model": ir.name,
        "specc.spec": ir.source,
        "specc.spec_path": str(ir.path),
        "specc.input": json.dumps(input_meta),
        "specc.output": json.dumps({"name": output_name, "shape": list(info_out.dims), "activation": final}),
        "specc.labels": json.dumps(labels),
        "specc.normalization": json.dumps(norm),
        "specc.normalization_in_graph": "true",
        "specc.image": json.dumps(image if kind == "image" else None),
        "specc.text": json.dumps(text if kind == "tokens" else None),
        "specc.weights": str(run.weights) if run.weights else "initialized",
        "specc.preprocess": json.dumps({k: v for k, v in pre.items() if k not in ("text", "normalize")}),
    }
    return Prepared(wrapper, module, run, ir.input.name, output_name, dims, ttype.dtype, ttype.vocab, metadata,
                    norm, note, labels, final, output_dims=tuple(info_out.dims))


def _axis_names(dims: tuple) -> dict[int, str]:
    axes = {0: "batch"}
    for i, d in enumerate(dims):
        if isinstance(d, str):
            axes[i + 1] = "sequence" if d == "?" else d
    return axes


def _dynamic_axes(p: Prepared) -> tuple[dict, dict[int, str]]:
    """torch.onnx's dynamic_axes (batch, and every named or `?` length of the input and the output)."""
    axes = _axis_names(p.dims)
    return {p.input_name: axes, p.output_name: _axis_names(p.output_dims)}, axes


def sample_input(p: Prepared, batch: int, length: int | None, rng: np.random.Generator) -> np.ndarray:
    shape = (batch,) + tuple(d if isinstance(d, int) else length for d in p.dims)
    if p.dtype == "int":
        return rng.integers(0, max(p.vocab or 2, 1), size=shape, dtype=np.int64)
    x = rng.standard_normal(shape).astype(np.float32)
    if p.wrapper.normalize:  # raw inputs whose normalized values are about N(0, 1)
        x = x * p.wrapper.std.numpy() + p.wrapper.mean.numpy()
    return x.astype(np.float32)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' warnings, log lines and C++ prints ("Torch IR graph at exception")."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript",
                                                    "root")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings(), tempfile.TemporaryFile() as sink:
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        saved = []
        try:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    stream.flush()
            for fd in (1, 2):
                with contextlib.suppress(OSError):
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def exporters(opset: int, explicit: bool) -> tuple[str, ...]:
    """Which exporters to try, in order: SPECC_ONNX_EXPORTER=torchscript|dynamo|auto (default auto:
    TorchScript, the fast one, then the dynamo exporter when TorchScript fails). TorchScript
    writes opsets up to 20, dynamo from 18 on; an opset the user asked for is never changed
    (without --opset, the dynamo fallback writes opset 18)."""
    choice = os.environ.get("SPECC_ONNX_EXPORTER", "auto").strip().lower()
    wanted = {"torchscript": ("torchscript",), "dynamo": ("dynamo",)}.get(choice, ("torchscript", "dynamo"))
    usable = {"torchscript": opset <= TORCHSCRIPT_MAX_OPSET,
              "dynamo": opset >= DYNAMO_MIN_OPSET or not explicit}
    return tuple(name for name in wanted if usable[name])


def _torchscript_export(module: nn.Module, example: torch.Tensor, input_name: str, output_name: str,
                        dynamic_axes: dict | None, opset: int):
    import onnx

    buffer = io.BytesIO()
    with _quiet(), torch.no_grad():
        torch.onnx.export(module, (example,), buffer, input_names=[input_name], output_names=[output_name],
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def _dynamo_export(module: nn.Module, example: torch.Tensor, input_name: str, output_name: str,
                   dynamic_axes: dict | None, opset: int):
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(module, (example,), None, input_names=[input_name], output_names=[output_name],
                                    dynamic_axes=dynamic_axes, opset_version=max(opset, 18), dynamo=True,
                                    verbose=False, report=False)
    return program.model_proto


def to_onnx(p: Prepared, model, opset: int, explicit: bool = False) -> tuple[Any, str, float]:
    """The ONNX ModelProto (exported with a batch of 2), the exporter used, and the seconds it took."""
    dynamic_axes, _ = _dynamic_axes(p)
    example = torch.from_numpy(sample_input(p, 2, 7, np.random.default_rng(0)))
    start = time.perf_counter()
    first_error: BaseException | None = None
    for name in exporters(opset, explicit):
        export = _torchscript_export if name == "torchscript" else _dynamo_export
        try:
            proto = export(p.wrapper, example, p.input_name, p.output_name, dynamic_axes, opset)
            return proto, name, time.perf_counter() - start
        except Exception as error:  # noqa: BLE001 - any exporter failure: the next one, then named
            first_error = first_error or error
    raise _name_failing_layer(p, model, example, opset, first_error)


def _layer_index(layers: tuple[LayerInfo, ...], out: dict[str, LayerInfo]) -> dict[str, LayerInfo]:
    for layer in layers:
        out[layer.path] = layer
        for body in layer.children:
            _layer_index(body, out)
    return out


def _name_failing_layer(p: Prepared, model, example: torch.Tensor, opset: int,
                        error: BaseException | None) -> SpecError:
    """Export each layer alone (deepest first) to find the one the exporter cannot handle."""
    layers = _layer_index(model.info.layers, {})
    modules = dict(p.module.named_modules())
    inputs: dict[str, tuple] = {}

    def recorder(path: str):
        def hook(module, args, output) -> None:  # returns None: the output stays as it is
            if path not in inputs:
                inputs[path] = tuple(a.detach() for a in args if isinstance(a, torch.Tensor))
        return hook

    hooks = [modules[path].register_forward_hook(recorder(path)) for path in layers if path in modules]
    try:
        with torch.no_grad():
            p.wrapper(example)
    except Exception:  # noqa: BLE001 - the failure is reported below either way
        pass
    finally:
        for hook in hooks:
            hook.remove()
    reason = _first_line(error) if error is not None else "no exporter can write this opset"
    failing, probed = [], 0
    for path in sorted(inputs, key=lambda k: -k.count(".")):  # deepest first
        args = inputs[path]
        if len(args) != 1:
            continue
        probed += 1
        try:
            _torchscript_export(modules[path], args[0], "x", "y", None, min(opset, TORCHSCRIPT_MAX_OPSET))
        except Exception as layer_error:  # noqa: BLE001
            failing.append((layers[path], _first_line(layer_error)))
    # When every layer fails alone, the problem is not a layer (an opset, the exporter itself).
    culprit = failing[0][0] if failing and len(failing) < probed else None
    if culprit is not None:
        reason = failing[0][1]
    if culprit is None:
        return SpecError.at(None, f"the ONNX exporter failed on {p.metadata['specc.model']}: {reason}",
                            "run with --debug for the exporter's traceback")
    return SpecError(Diagnostic(
        f"layer `{culprit.node.kind}` ({culprit.path}) cannot be exported to ONNX (opset {opset}): {reason}",
        culprit.node.span, "replace this layer, or try another --opset"), model.ir.source)


def finish_proto(proto, p: Prepared) -> None:
    """metadata_props, producer, doc string; then onnx.checker."""
    import onnx

    from .. import __version__

    del proto.metadata_props[:]
    for key, value in p.metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "specc", __version__
    proto.doc_string = f"{p.metadata['specc.model']}: exported by specc {__version__} from {p.metadata['specc.spec_path']}"
    proto.model_version = 1
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise SpecError.at(None, f"the exported ONNX graph is invalid: {_first_line(error)}") from None


def ort_session(data: bytes | str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _torch_run(p: Prepared, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            outs.append(p.wrapper(torch.from_numpy(np.ascontiguousarray(x[start:start + chunk]))).numpy())
    return np.concatenate(outs)


def _ort_run(session, name: str, x: np.ndarray, chunk: int = 256) -> np.ndarray:
    return np.concatenate([session.run(None, {name: x[start:start + chunk]})[0] for start in range(0, len(x), chunk)])


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return math.inf
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.0 if np.array_equal(a, b, equal_nan=True) else math.inf
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def predicted_classes(y: np.ndarray) -> np.ndarray:
    """Top class per sample: argmax, or the 0.5 threshold of a single output."""
    y = y.reshape(len(y), -1)
    return (y[:, 0] > 0.5).astype(np.int64) if y.shape[1] == 1 else np.argmax(y, axis=1)


def _accuracy(y_pred: np.ndarray, y_true: np.ndarray | None) -> float | None:
    if y_true is None:
        return None
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] > 1:  # one-hot
        y_true = np.argmax(y_true, axis=1)
    y_true = y_true.reshape(-1)
    pred = predicted_classes(y_pred)
    if len(pred) != len(y_true):
        return None
    return float(np.mean(pred == y_true.astype(np.int64)))


@dataclass
class RunData:
    """The run's data as the model takes it before normalization (normalization is in the graph)."""

    x_train: np.ndarray | None
    x_val: np.ndarray | None
    y_val: np.ndarray | None  # class ids (or 0/1 for a single sigmoid), None when not a classifier
    source: str  # where the validation data come from
    train_source: str = ""


def run_data(p: Prepared, model) -> RunData | None:
    """The run's training and validation data, found as `specc evaluate` finds them.

    First `validation.npz` / `calibration.npz` saved in the run folder (x, y); else the data
    named in run.json reloaded with the trainer's loaders: its validation file, or the same
    validation split (same seed) of its training data. None without a run, or when the data
    cannot be found any more (then a note says why)."""
    if p.run.weights is None:
        return None
    if p.data_cache is not None:
        return p.data_cache or None
    result: RunData | None = None
    saved_val, saved_train = p.run.data(*VALIDATION_FILES), p.run.data(*CALIBRATION_FILES)
    if saved_val is not None or saved_train is not None:
        x_val, y_val = saved_val if saved_val is not None else (None, None)
        dtype = np.int64 if p.dtype == "int" else np.float32
        result = RunData(_fit_data(p, saved_train[0].astype(dtype), "training") if saved_train else None,
                         _fit_data(p, x_val.astype(dtype), "validation") if x_val is not None else None,
                         y_val, f"arrays saved in {p.run.folder}", f"arrays saved in {p.run.folder}")
    else:
        try:
            result = _reload_run_data(p, model)
        except SpecError as error:
            p.notes.append(f"the run's data could not be reloaded ({error.first.message}); "
                           "checked on random inputs only")
        except Exception as error:  # noqa: BLE001 - a moved or changed data file must not stop the export
            p.notes.append(f"the run's data could not be reloaded ({_first_line(error)}); "
                           "checked on random inputs only")
    p.data_cache = result or False
    return result


def _reload_run_data(p: Prepared, model) -> RunData | None:
    run_json_path = p.run.folder / "run.json"
    if not run_json_path.is_file():
        return None
    run_json = json.loads(run_json_path.read_text(encoding="utf-8"))
    from ..run import validation_split
    from ..text import Tokenizer
    from ..train_config import DEFAULT_SEED, DEFAULT_VALIDATION_SPLIT
    from ..training import data as data_mod
    from ..training.options.losses import default_loss

    target = data_mod.Target.of(model)
    info, config = run_json.get("data") or {}, run_json.get("config") or {}
    seed = config.get("seed") if config.get("seed") is not None else DEFAULT_SEED
    tokenizer = Tokenizer.from_json(p.run.preprocess["text"]) if p.run.preprocess.get("text") else None
    raw = data_mod.load_raw(info.get("train"), target)
    if info.get("validation"):
        train_raw, val_raw = raw, data_mod.load_raw(info["validation"], target)
        where = f"{val_raw.source}"
    else:
        split = info.get("validation_split", DEFAULT_VALIDATION_SPLIT)
        train_idx, val_idx = validation_split(len(raw), split, seed)
        train_raw, val_raw = raw.take(train_idx), (raw.take(val_idx) if len(val_idx) else None)
        where = f"{raw.source} (the run's {split:g} validation split)"
    x_train, _ = data_mod.adapt_inputs(train_raw, target, tokenizer)
    if val_raw is None:
        return RunData(x_train.numpy(), None, None, raw.source, raw.source)
    x_val, _ = data_mod.adapt_inputs(val_raw, target, tokenizer)
    y_val = None
    if target.final_activation in ("softmax", "sigmoid"):
        loss = (config.get("loss") or {}).get("kind") or default_loss(target, val_raw.y).kind
        names = p.run.preprocess.get("labels")
        named = val_raw.y.dtype == object or val_raw.y.dtype.kind in "US"
        y, _ = data_mod.adapt_labels(val_raw, target, loss, names if named else None)
        y_val = y.numpy()
    return RunData(x_train.numpy(), x_val.numpy(), y_val, where, train_raw.source)


def validation_data(p: Prepared, model=None, limit: int = 2048) -> tuple[np.ndarray, np.ndarray | None] | None:
    data = run_data(p, model)
    if data is None or data.x_val is None:
        return None
    y = data.y_val[:limit] if data.y_val is not None else None
    return data.x_val[:limit], y


def _fit_data(p: Prepared, x: np.ndarray, what: str) -> np.ndarray:
    want = tuple(p.dims)
    if x.ndim != len(want) + 1 or any(isinstance(d, int) and d != s for d, s in zip(want, x.shape[1:])):
        raise SpecError.at(None, f"the run's {what} data has shape {_dims(x.shape[1:])} per sample; "
                           f"the model takes {'x'.join(map(str, want))}")
    return x


def verify(p: Prepared, session, model=None) -> tuple[list[Check], dict[str, Any] | None]:
    rng = np.random.default_rng(1)
    dynamic = any(isinstance(d, str) for d in p.dims)
    cases = [(1, 5), (3, 23), (3, 5), (1, 23)] if dynamic else [(1, None), (3, None)]
    checks = []
    for batch, length in cases:
        x = sample_input(p, batch, length, rng)
        checks.append(Check("random", list(x.shape), _diff(_torch_run(p, x), session.run(None, {p.input_name: x})[0])))
    validation = None
    data = validation_data(p, model)
    if data is not None:
        x, y = data
        ref, got = _torch_run(p, x), _ort_run(session, p.input_name, x)
        diff = _diff(ref, got)
        checks.append(Check("validation", list(x.shape), diff))
        validation = {"samples": int(len(x)), "source": run_data(p, model).source, "max_abs_diff": diff,
                      "accuracy_torch": _accuracy(ref, y), "accuracy_onnx": _accuracy(got, y)}
    return checks, validation


def export_model(model, output: str | Path, weights: str | Path | None = None, opset: int | None = None,
                 quantize: str | None = None, seed: int = 0) -> ExportReport:
    """Export `model` (a checked `Model`) to `output`; see the module docstring."""
    explicit = opset is not None
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= max_opset():
        raise UsageError(f"--opset {opset}: specc exports opsets {MIN_OPSET} to {max_opset()}")
    if quantize not in (None, "int8"):
        raise UsageError(f"--quantize {quantize}: only int8 is supported")
    output = Path(output)
    p = prepare(model, weights, seed)
    proto, exporter, seconds = to_onnx(p, model, opset, explicit)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
    finish_proto(proto, p)
    data = proto.SerializeToString()
    session = ort_session(data)
    checks, validation = verify(p, session, model)
    worst = max(checks, key=lambda c: c.max_abs_diff)
    if not worst.max_abs_diff <= FP32_TOLERANCE:
        raise SpecError.at(None, f"ONNX Runtime disagrees with PyTorch: max abs diff {worst.max_abs_diff:.3g} "
                           f"> {FP32_TOLERANCE:g} on {worst.what} inputs {_dims(tuple(worst.shape))}; "
                           f"nothing was written to {output}",
                           "try another --opset, or report the layer kinds of this spec as an export bug")
    _, axes = _dynamic_axes(p)
    report = ExportReport(
        path=str(output), model=model.name, opset=opset, exporter=exporter, input_name=p.input_name,
        input_shape=[axes.get(i + 1, d) for i, d in enumerate(p.dims)],
        input_dtype="int64" if p.dtype == "int" else "float32", output_name=p.output_name,
        output_shape=[_axis_names(p.output_dims).get(i + 1, d) for i, d in enumerate(p.output_dims)], weights=str(p.run.weights) if p.run.weights else None,
        normalization=p.normalization, normalization_note=p.normalization_note, labels=p.labels,
        export_seconds=round(seconds, 4), size_bytes=len(data), tolerance=FP32_TOLERANCE, checks=checks,
        validation=validation, notes=p.notes,
    )
    if quantize == "int8":
        from .onnx_quantize import quantize_int8

        data, report.quantization = quantize_int8(p, model, data, session)
        report.size_bytes = len(data)
    try:
        write_bytes_atomic(output, data)
    except OSError as error:
        raise SpecError.at(None, f"cannot write {output}: {error.strerror or error}") from None
    return report


__all__ = ["ExportReport", "FP32_TOLERANCE", "export_model", "prepare", "predicted_classes", "resolve_run"]

"""What `specc export` tells the user: the report's fields (the `--json` keys) and its text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .messages import megabytes


@dataclass
class Check:
    """One parity check of PyTorch against ONNX Runtime on the same inputs."""

    what: str  # "random" or "validation"
    shape: list[int]
    max_abs_diff: float  # over the finite values of every compared tensor
    max_rel_diff: float = 0.0  # |onnx - torch| / |torch| over the finite values
    nonfinite: int = 0  # inf or NaN values, at the same places in both
    compared: str = "output"  # "logits and output" when the model ends in softmax/sigmoid

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "shape": self.shape, "max_abs_diff": self.max_abs_diff,
                "max_rel_diff": self.max_rel_diff, "nonfinite": self.nonfinite, "compared": self.compared}


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
    relative_tolerance: float = 0.0
    converted_from: int | None = None  # the opset the exporter wrote when the version converter raised it
    external_data: dict[str, Any] | None = None  # {"path", "bytes"}: the weights' side file
    simplified: dict[str, Any] | None = None  # --simplify: kept or why not, nodes, size, latency before/after
    # A graph spec's inputs and outputs ({"name", "shape", "dtype"} and {"name", "shape", "activation"}),
    # in spec order; None for a chain, whose one input and output are the fields above.
    inputs: list[dict[str, Any]] | None = None
    outputs: list[dict[str, Any]] | None = None

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "checks"
               and not (k in ("inputs", "outputs") and v is None)}
        out["checks"] = [c.to_dict() for c in self.checks]
        out["max_abs_diff"] = self.max_abs_diff
        return out

    def render(self) -> str:
        exporter = f"{self.exporter} exporter" + (f" at opset {self.converted_from}, version-converted"
                                                  if self.converted_from else "")
        lines = [
            (f"exported {self.model} to {self.path} ({megabytes(self.size_bytes)}, opset {self.opset}, "
             f"{exporter}, {self.export_seconds:.2f} s)"),
            *([f"  input  `{i['name']}`: {i['dtype']} batch x {_shape(i['shape'])}" for i in self.inputs]
              if self.inputs else [f"  input  `{self.input_name}`: {self.input_dtype} batch x {_shape(self.input_shape)}"]),
            *([f"  output `{o['name']}`: batch x {_shape(o['shape'])}" for o in self.outputs]
              if self.outputs else [f"  output `{self.output_name}`: batch x {_shape(self.output_shape)}"]),
            f"  weights: {self.weights or 'freshly initialized (no --weights: untrained)'}",
        ]
        if self.normalization:
            lines.append(f"  normalization in the graph: {_describe_norm(self.normalization)}")
        if self.normalization_note:
            lines.append(f"  note: {self.normalization_note}")
        if self.labels:
            shown = ", ".join(self.labels[:10]) + (", ..." if len(self.labels) > 10 else "")
            lines.append(f"  labels: {shown}")
        if self.external_data:
            lines.append(f"  weights in {self.external_data['path']} ({megabytes(self.external_data['bytes'])}), "
                         "beside the .onnx: keep the two files together")
        lines.append(self._parity_line())
        lines.append(self._validation_line())
        if self.simplified:
            lines.extend(_simplified_lines(self.simplified))
        if self.quantization:
            lines.extend(_quantization_lines(self.quantization))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _parity_line(self) -> str:
        compared = self.checks[0].compared if self.checks else "output"
        verify = "; ".join(f"{c.what} {'x'.join(map(str, c.shape))}: {c.max_abs_diff:.2e}"
                           + (f" ({c.nonfinite} inf/NaN alike)" if c.nonfinite else "") for c in self.checks)
        return (f"  parity PyTorch vs ONNX Runtime (fp32 {compared}, |diff| <= {self.tolerance:g} + "
                f"{self.relative_tolerance:g} x |value|; max abs diff): {verify}")

    def _validation_line(self) -> str:
        if not self.validation:
            return "  validation data: none (no run, or the run has none): random inputs only"
        v = self.validation
        text = f"  validation data: {v['samples']} samples of {v['source']}, max abs diff {v['max_abs_diff']:.2e}"
        if v.get("accuracy_torch") is not None:
            text += f", accuracy PyTorch {v['accuracy_torch']:.4f} / ONNX {v['accuracy_onnx']:.4f}"
        return text


def _shape(dims: list) -> str:
    return (" x " if any(isinstance(d, str) for d in dims) else "x").join(str(d) for d in dims)


def _describe_norm(norm: dict[str, Any]) -> str:
    def short(values) -> str:
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 1:
            return f"{v[0]:.4g}"
        return "[" + ", ".join(f"{a:.4g}" for a in v[:4]) + (", ...]" if v.size > 4 else "]")

    return f"{norm.get('kind', 'custom')}: (x - {short(norm['mean'])}) / {short(norm['std'])}"


def _simplified_lines(s: dict[str, Any]) -> list[str]:
    if not s["kept"]:
        return [f"  simplification (onnxslim): not kept, the exported graph is written: {s['reason']}"]
    return [f"  simplification (onnxslim): kept, verified like the export; nodes {s['nodes_before']} -> "
            f"{s['nodes_after']}, size {megabytes(s['bytes_before'])} -> {megabytes(s['bytes_after'])}, "
            f"batch-1 latency {s['latency_before_ms']:.3f} -> {s['latency_after_ms']:.3f} ms "
            f"({s['latency_ratio']:.2f}x)"]


def _quantization_lines(q: dict[str, Any]) -> list[str]:
    lines = [(f"  int8 ({q['method']}): size {megabytes(q['fp32_bytes'])} -> {megabytes(q['int8_bytes'])} "
              f"({q['size_ratio']:.2f}x)")]
    lines.append(f"    calibration: {q['calibration']}" if q.get("calibration") else
                 "    calibration: none (dynamic quantization computes activation ranges at run time)")
    lines.append(f"    batch-1 latency: fp32 {q['fp32_latency_ms']:.3f} ms, int8 {q['int8_latency_ms']:.3f} ms "
                 f"({q['latency_ratio']:.2f}x)")
    if q["latency_ratio"] > 1.0:
        lines.append(f"    WARNING: the int8 model is SLOWER than fp32 at batch 1 "
                     f"({q['latency_ratio']:.2f}x the latency) on this machine")
    if "kept" in q:
        lines.append(f"    written: {q['kept']}: {q['kept_reason']}")
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
    return lines

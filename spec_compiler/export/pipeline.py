"""`Model.export` / `specc export`: the steps in order, each in its module.

1. prepare: build the module, load and check the run's weights (a run folder whose files
   all come from one run, or a .safetensors file), put the run's normalization in front;
2. exporter: torch.onnx with a batch of 2, dynamic batch and sequence axes, the failing
   layer named when it cannot export;
3. passes and metadata: graph rewrites, shape information for every tensor, the
   `specc.*` metadata, onnx.checker;
4. verify: PyTorch against ONNX Runtime on random inputs and the run's validation data,
   on logits and output (data: the run's data, reloaded);
5. quantize (optional): int8, checked against fp32;
6. the file is written atomically. When any step fails nothing is left at the output path.
"""

from __future__ import annotations

from pathlib import Path

import onnx_ir as ir

from ..errors import SpecError, UsageError
from ..files import write_bytes_atomic
from .data import run_data
from .exporter import DEFAULT_OPSET, MIN_OPSET, max_opset, to_onnx
from .metadata import checked_bytes, finish, onnx_metadata
from .passes import ExplicitSamePadding, ExposeLogits, shape_info
from .prepare import LogitsGraph, Prepared, axis_names, prepare
from .report import ExportReport
from .verify import FP32_RELATIVE_TOLERANCE, FP32_TOLERANCE, OrtGraph, ort_session, runtime_error, verify


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
    graph, exporter, seconds = _exported_graph(p, model, opset, explicit)
    opset = next((o for domain, o in graph.opset_imports.items() if domain in ("", "ai.onnx")), opset)
    finish(graph, onnx_metadata(p, model))
    data = checked_bytes(graph)
    runtime = _runtime_graph(p, model, graph, data, opset, explicit, str(output))
    run = run_data(p, model)
    checks, validation = verify(p, model, runtime, run, str(output))
    axes = axis_names(p.dims)
    report = ExportReport(
        path=str(output), model=model.name, opset=opset, exporter=exporter, input_name=p.input_name,
        input_shape=[axes.get(i + 1, d) for i, d in enumerate(p.dims)],
        input_dtype="int64" if p.dtype == "int" else "float32", output_name=p.output_name,
        output_shape=[axis_names(p.output_dims).get(i + 1, d) for i, d in enumerate(p.output_dims)],
        weights=str(p.weights) if p.weights else None,
        normalization=p.normalization.model_dump(mode="json") if p.normalization else None,
        normalization_note=p.normalization_note, labels=p.labels, export_seconds=round(seconds, 4),
        size_bytes=len(data), tolerance=FP32_TOLERANCE, relative_tolerance=FP32_RELATIVE_TOLERANCE, checks=checks,
        validation=validation, notes=p.notes)
    if quantize == "int8":
        from .quantize import quantize_int8

        data, report.quantization = quantize_int8(p, model, data, runtime, run)
        report.size_bytes = len(data)
    try:
        write_bytes_atomic(output, data)
    except OSError as error:
        raise SpecError.at(None, f"cannot write {output}: {error.strerror or error}") from None
    return report


def _exported_graph(p: Prepared, model, opset: int, explicit: bool, logits: bool = False) -> tuple[ir.Model, str, float]:
    """The exported model as onnx_ir, rewritten by the passes, with shape information."""
    if logits:
        proto, exporter, seconds = to_onnx(p, model, opset, explicit, LogitsGraph(p.wrapper), "logits")
    else:
        proto, exporter, seconds = to_onnx(p, model, opset, explicit)
    graph = ir.from_proto(proto)
    ExplicitSamePadding()(graph)
    return shape_info(graph), exporter, seconds


def _runtime_graph(p: Prepared, model, graph: ir.Model, data: bytes, opset: int, explicit: bool,
                   output: str) -> OrtGraph:
    """The file's graph in ONNX Runtime, with the logits as a second output for a model that
    ends in softmax/sigmoid (or, where they cannot be split off, a logits graph of their own)."""
    verified, logits_name, logits_session = data, None, None
    if p.is_classifier:
        expose = ExposeLogits(p.final)
        expose(graph)
        if expose.exposed is not None:
            verified, logits_name = ir.to_proto(graph).SerializeToString(), expose.exposed
        else:
            logits_graph = _exported_graph(p, model, opset, explicit, logits=True)[0]
            logits_session = _session(ir.to_proto(logits_graph).SerializeToString(), p, model, output)
    return OrtGraph(verified, _session(verified, p, model, output), p.input_name, p.output_name, logits_name,
                    logits_session)


def _session(data: bytes, p: Prepared, model, output: str):
    try:
        return ort_session(data)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
        raise runtime_error(data, p.input_name, model, error, None, None, output) from None

"""`Model.export` / `specc export`: the steps in order, each in its module.

1. prepare: build the module, load and check the run's weights (a run folder whose files
   all come from one run, or a .safetensors file), put the run's normalization in front;
2. exporter: torch.onnx with a batch of 2, dynamic batch and sequence axes, the failing
   layer named when it cannot export (opsets above 20 through the version converter);
3. passes and metadata: graph rewrites, shape information for every tensor, the
   `specc.*` metadata;
4. external: the model serialized as the file will hold it, weights inside or (over the
   threshold, or with --external-data) in OUT.onnx.data, staged beside the output;
   onnx.checker;
5. verify: PyTorch against ONNX Runtime on random inputs and the run's validation data,
   on logits and output (data: the run's data, reloaded);
6. simplify (optional): onnxslim, kept only when it verifies too;
7. quantize (optional): int8, checked against fp32, kept where it is faster (or forced);
8. the file (or the .onnx and .data pair) is written atomically. When any step fails
   nothing is left at the output path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx_ir as ir

from ..errors import SpecError, UsageError
from .data import run_data
from .exporter import DEFAULT_OPSET, MIN_OPSET, TORCHSCRIPT_MAX_OPSET, max_opset, to_onnx
from .external import PROTOBUF_LIMIT, Serialized, destination, inline_bytes, weight_bytes
from .graph import export_graph
from .metadata import finish, onnx_metadata
from .passes import ExplicitSamePadding, ExposeLogits, ShareTransposedTables, shape_info
from .prepare import LogitsGraph, Prepared, axis_names, prepare
from .quantize import INT8_FORCED, QUANTIZE_CHOICES, quantize_int8
from .report import ExportReport
from .simplify import simplified
from .verify import FP32_RELATIVE_TOLERANCE, FP32_TOLERANCE, OrtGraph, ort_session, runtime_error, verify


def export_model(model, output: str | Path, weights: str | Path | None = None, opset: int | None = None,
                 quantize: str | None = None, seed: int = 0, external_data: bool = False,
                 simplify: bool = False) -> ExportReport:
    """Export `model` (a checked `Model`) to `output`; see the module docstring."""
    explicit = opset is not None
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= max_opset():
        raise UsageError(f"--opset {opset}: specc exports opsets {MIN_OPSET} to {max_opset()} (the newest that "
                         "the installed onnxruntime runs)")
    if quantize is not None and quantize not in QUANTIZE_CHOICES:
        raise UsageError(f"--quantize {quantize}: one of {', '.join(QUANTIZE_CHOICES)}")
    output = Path(output)
    if not model.ir.is_chain:
        return export_graph(model, output, weights, opset, explicit, quantize, seed, external_data, simplify)
    p = prepare(model, weights, seed)
    # The exporters' own files: TorchScript writes the weights of a model over 2 GB beside its graph.
    with tempfile.TemporaryDirectory(prefix="specc-export-") as scratch:
        export = _Export(p, model, str(output), opset, explicit, Path(scratch))
        graph, exporter, seconds = export.graph()
        opset = next((o for domain, o in graph.opset_imports.items() if domain in ("", "ai.onnx")), opset)
        finish(graph, onnx_metadata(p, model))
        if quantize is not None and weight_bytes(graph) >= PROTOBUF_LIMIT:
            raise SpecError.at(None, f"--quantize {quantize}: the weights of {model.name} ({weight_bytes(graph) / 1e9:.2f} GB) "
                                     "do not fit in one ONNX message (protobuf's 2 GB limit), which the quantizer needs",
                               "export in fp32 (without --quantize)")
        with destination(output, graph, external_data) as target:
            staged = target.stage(graph)
            runtime = export.runtime(graph, staged)
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
                size_bytes=0, tolerance=FP32_TOLERANCE, relative_tolerance=FP32_RELATIVE_TOLERANCE, checks=checks,
                validation=validation, notes=p.notes,
                converted_from=TORCHSCRIPT_MAX_OPSET if exporter == "torchscript" and opset > TORCHSCRIPT_MAX_OPSET
                else None)
            final = staged
            if simplify:
                final, runtime, report.simplified = simplified(p, model, graph, staged, runtime, run, str(output),
                                                               export.runtime)
            if quantize is not None:
                int8, report.quantization = quantize_int8(p, model, inline_bytes(final), runtime, run,
                                                          forced=quantize == INT8_FORCED)
                if int8 is not None:
                    final = Serialized(int8)
            model_bytes, data_bytes = target.commit(final)
        report.size_bytes = model_bytes + data_bytes
        if target.external:
            report.external_data = {"path": str(target.data), "bytes": data_bytes}
    return report


class _Export:
    """The export's steps that are run again for a second graph (the logits graph, the
    simplified graph): exporting with the passes, and building ONNX Runtime's graph."""

    def __init__(self, p: Prepared, model, output: str, opset: int, explicit: bool, scratch: Path):
        self.p, self.model, self.output = p, model, output
        self.opset, self.explicit, self.scratch = opset, explicit, scratch

    def graph(self, logits: bool = False) -> tuple[ir.Model, str, float]:
        """The exported model as onnx_ir, rewritten by the passes, with shape information."""
        p, model = self.p, self.model
        if logits:
            exported, exporter, seconds = to_onnx(p, model, self.opset, self.explicit, self.scratch,
                                                  LogitsGraph(p.wrapper), "logits")
        else:
            exported, exporter, seconds = to_onnx(p, model, self.opset, self.explicit, self.scratch)
        ExplicitSamePadding()(exported)
        if getattr(p.module, "tied", None):
            ShareTransposedTables()(exported)
        return shape_info(exported), exporter, seconds

    def runtime(self, graph: ir.Model, staged: Serialized) -> OrtGraph:
        """`staged` (the serialized `graph`) in ONNX Runtime, with the logits as a second output
        for a model that ends in softmax/sigmoid (or, where they cannot be split off, a logits
        graph of its own). `graph` is left as it was."""
        p, verified, logits_name, logits_session = self.p, staged.model, None, None
        if p.is_classifier:
            expose = ExposeLogits(p.final)
            expose(graph)
            if expose.exposed is not None:
                verified, logits_name = ir.to_proto(graph).SerializeToString(), expose.exposed
                graph.graph.outputs.pop()  # the file keeps its one output
            else:
                logits_graph = self.graph(logits=True)[0]
                logits_session = self._session(Serialized(ir.to_proto(logits_graph).SerializeToString()))
        return OrtGraph(verified, self._session(Serialized(verified, staged.folder)), p.input_name, p.output_name,
                        logits_name, logits_session, staged.folder)

    def _session(self, serialized: Serialized):
        try:
            return ort_session(serialized.model, folder=serialized.folder)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
            raise runtime_error(serialized.model, self.p.input_name, self.model, error, None, None, self.output,
                                serialized.folder) from None

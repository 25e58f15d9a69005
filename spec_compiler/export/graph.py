"""ONNX export of a graph spec: several inputs and outputs, each named as in the spec.

The same steps as a chain's export (spec_compiler/export/pipeline.py) where they apply:
the run's weights checked and loaded, torch.onnx (TorchScript, then dynamo), the graph
passes and the `specc.*` metadata (with `inputs` and `outputs` lists), the file staged
and written atomically, and parity: PyTorch against ONNX Runtime on random inputs at two
batch sizes (two lengths when one is dynamic), every output compared, and the logits of
each output that ends in softmax/sigmoid, read from the same graph (exposed as extra
outputs while verifying). The run's normalization goes in front of the input when the
graph has one float input (the only case training writes one for). Not yet for graphs:
--quantize and --simplify (a usage error), checks on the run's validation data.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx_ir as ir
import torch
from torch import nn

from ..errors import SpecError, UsageError
from ..run import RunFolder, RunRecord
from ..run.records import OnnxInput, OnnxMetadata, OnnxOutput
from ..version import __version__
from .exporter import EXPORT_BATCH, TORCHSCRIPT_MAX_OPSET, ExportFailed, export_with_fallback
from .external import destination
from .messages import dims_text, first_line
from .metadata import LAYOUTS, finish
from .passes import ACTIVATION_OPS, ORDER_PRESERVING, ExplicitSamePadding, ShareTransposedTables, shape_info
from .prepare import PROBABILITY_OUTPUTS, axis_names, normalization_arrays
from .report import Check, ExportReport
from .verify import FP32_RELATIVE_TOLERANCE, FP32_TOLERANCE, RANDOM_CASES, RANDOM_CASES_DYNAMIC, compare, ort_session
from .weights import load_weights


@dataclass(frozen=True)
class GraphInput:
    name: str
    kind: str
    dims: tuple
    dtype: str  # "float" | "int"
    vocab: int | None


@dataclass(frozen=True)
class GraphOutput:
    name: str
    dims: tuple
    final: str | None  # softmax or sigmoid ending it, kept in the graph


class GraphExported(nn.Module):
    """What goes into the file: the run's normalization in front of the one float input
    (when there is one), then the graph module."""

    def __init__(self, model: nn.Module, normalized: int | None, mean: np.ndarray | None, std: np.ndarray | None):
        super().__init__()
        self.model, self.normalized = model, normalized
        if normalized is not None:
            self.register_buffer("mean", torch.from_numpy(np.ascontiguousarray(mean)))
            self.register_buffer("std", torch.from_numpy(np.ascontiguousarray(std)))

    def inputs(self, inputs: tuple) -> list:
        inputs = list(inputs)
        if self.normalized is not None:
            inputs[self.normalized] = (inputs[self.normalized] - self.mean) / self.std
        return inputs

    def forward(self, *inputs: torch.Tensor):
        return self.model(*self.inputs(inputs))

    def forward_logits(self, *inputs: torch.Tensor):
        return self.model.forward_logits(*self.inputs(inputs))


def export_graph(model, output: Path, weights, opset: int, explicit: bool, quantize: str | None, seed: int,
                 external_data: bool, simplify: bool) -> ExportReport:
    """Export a graph spec's model to `output` (see the module docstring)."""
    if quantize is not None or simplify:
        flag = "--quantize" if quantize is not None else "--simplify"
        raise UsageError(f"{flag}: not yet for a model with several inputs or outputs ({model.name}); export without it")
    ir_model, info = model.ir, model.info
    folder, weights_file, preprocess, record = None, None, None, None
    if weights is not None:
        folder, weights_file = RunFolder.of_weights(weights)
        if folder is not None:
            folder.check_one_run(weights_file)
            preprocess, record = folder.read_preprocess(), folder.read_record()
    module = model.build(seed=seed)
    if weights_file is not None:
        load_weights(module, weights_file, ir_model.source, folder.spec_source() if folder is not None else None)
    module.eval()
    inputs = [GraphInput(spec.name, spec.kind, tuple(spec.type.dims), spec.type.dtype, spec.type.vocab)
              for spec in ir_model.inputs]
    outputs = [GraphOutput(name, tuple(t.dims), module.final_activations.get(name)) for name, t in info.outputs.items()]
    normalization = preprocess.normalize if preprocess is not None else None
    floats = [i for i, graph_input in enumerate(inputs) if graph_input.dtype == "float"]
    normalized = floats[0] if normalization is not None and len(inputs) == 1 and floats else None
    arrays = normalization_arrays(normalization, inputs[0].dims) if normalized is not None else (None, None)
    wrapper = GraphExported(module, normalized, *arrays).eval()
    with tempfile.TemporaryDirectory(prefix="specc-export-") as scratch:
        graph, exporter, seconds = _to_onnx(wrapper, model, inputs, outputs, opset, explicit, Path(scratch))
        opset = next((o for domain, o in graph.opset_imports.items() if domain in ("", "ai.onnx")), opset)
        labels = (preprocess.labels if preprocess is not None else None) or (list(ir_model.train.labels)
                                                                              if ir_model.train.labels else None)
        finish(graph, _metadata(model, inputs, outputs, labels, weights_file, record, preprocess, normalization
                                if normalized is not None else None))
        with destination(output, graph, external_data) as target:
            staged = target.stage(graph)
            logits = _expose_logits(graph, outputs)
            verified = ir.to_proto(graph).SerializeToString()
            del graph.graph.outputs[len(outputs):]  # the file keeps its own outputs
            try:
                session = ort_session(verified, folder=staged.folder)
            except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
                raise SpecError.at(None, f"ONNX Runtime cannot load the exported graph: {first_line(error)}; "
                                         f"nothing was written to {output}",
                                   "try another --opset, or report this spec as an export bug") from None
            checks = _verify(wrapper, session, inputs, outputs, logits, str(output))
            model_bytes, data_bytes = target.commit(staged)
    first, out = inputs[0], outputs[0]
    report = ExportReport(
        path=str(output), model=model.name, opset=opset, exporter=exporter, input_name=first.name,
        input_shape=_shape(first.dims), input_dtype=_dtype(first), output_name=out.name, output_shape=_shape(out.dims),
        weights=str(weights_file) if weights_file else None,
        normalization=normalization.model_dump(mode="json") if normalized is not None else None,
        normalization_note=None, labels=labels, export_seconds=round(seconds, 4), size_bytes=model_bytes + data_bytes,
        tolerance=FP32_TOLERANCE, relative_tolerance=FP32_RELATIVE_TOLERANCE, checks=checks,
        converted_from=TORCHSCRIPT_MAX_OPSET if exporter == "torchscript" and opset > TORCHSCRIPT_MAX_OPSET else None,
        inputs=[{"name": i.name, "shape": _shape(i.dims), "dtype": _dtype(i)} for i in inputs],
        outputs=[{"name": o.name, "shape": _shape(o.dims), "activation": o.final} for o in outputs])
    if target.external:
        report.external_data = {"path": str(target.data), "bytes": data_bytes}
    return report


def _shape(dims: tuple) -> list:
    axes = axis_names(dims)
    return [axes.get(i + 1, d) for i, d in enumerate(dims)]


def _dtype(graph_input: GraphInput) -> str:
    return "int64" if graph_input.dtype == "int" else "float32"


def sample_inputs(inputs: list[GraphInput], batch: int, length: int | None,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Random raw inputs, one array per input: token ids in [0, vocab), or N(0, 1) floats."""
    arrays = []
    for graph_input in inputs:
        shape = (batch,) + tuple(d if isinstance(d, int) else length for d in graph_input.dims)
        if graph_input.dtype == "int":
            arrays.append(rng.integers(0, max(graph_input.vocab or 2, 1), size=shape, dtype=np.int64))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32))
    return arrays


def _to_onnx(wrapper: GraphExported, model, inputs: list[GraphInput], outputs: list[GraphOutput], opset: int,
             explicit: bool, scratch: Path) -> tuple[ir.Model, str, float]:
    dynamic_axes = {i.name: axis_names(i.dims) for i in inputs} | {o.name: axis_names(o.dims) for o in outputs}
    examples = tuple(torch.from_numpy(a) for a in sample_inputs(inputs, EXPORT_BATCH, 7, np.random.default_rng(0)))
    try:
        graph, exporter, seconds = export_with_fallback(wrapper, examples, [i.name for i in inputs],
                                                        [o.name for o in outputs], dynamic_axes, opset, explicit,
                                                        scratch)
    except ExportFailed as failed:
        reason = first_line(failed.first_error) if failed.first_error else "no exporter can write this opset"
        raise SpecError.at(None, f"the ONNX exporter failed on {model.name}: {reason}",
                           "run with --debug for the exporter's traceback") from None
    ExplicitSamePadding()(graph)
    if getattr(wrapper.model, "tied", None):
        ShareTransposedTables()(graph)
    return shape_info(graph), exporter, seconds


def _expose_logits(graph: ir.Model, outputs: list[GraphOutput]) -> dict[str, str]:
    """Make the input of each output's final softmax/sigmoid an extra graph output, for
    verification; {output name: logits name} for those found (walking back through
    reshapes only, as passes.ExposeLogits does for a chain)."""
    exposed = {}
    for value, out in zip(list(graph.graph.outputs), outputs):
        if out.final not in PROBABILITY_OUTPUTS:
            continue
        node = value.producer()
        while node is not None and node.op_type in ORDER_PRESERVING and node.inputs and node.inputs[0] is not None:
            node = node.inputs[0].producer()
        if node is None or node.op_type != ACTIVATION_OPS[out.final] or node.inputs[0] is None:
            continue
        logits = node.inputs[0]
        if logits.is_graph_output() or logits.is_graph_input():
            continue
        graph.graph.outputs.append(logits)
        exposed[out.name] = logits.name
    return exposed


def _verify(wrapper: GraphExported, session, inputs: list[GraphInput], outputs: list[GraphOutput],
            logits: dict[str, str], output: str) -> list[Check]:
    rng = np.random.default_rng(1)
    dynamic = any(isinstance(d, str) for i in inputs for d in i.dims)
    names = [o.name for o in outputs] + list(logits.values())
    checks = []
    for batch, length in RANDOM_CASES_DYNAMIC if dynamic else RANDOM_CASES:
        arrays = sample_inputs(inputs, batch, length, rng)
        tensors = [torch.from_numpy(a) for a in arrays]
        with torch.no_grad():
            ours = _as_tuple(wrapper(*tensors))
            our_logits = dict(zip([o.name for o in outputs], _as_tuple(wrapper.forward_logits(*tensors))))
        try:
            got = session.run(names, {i.name: a for i, a in zip(inputs, arrays)})
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
            raise SpecError.at(None, f"ONNX Runtime cannot run the exported graph on random inputs: "
                                     f"{first_line(error)}; nothing was written to {output}",
                               "try another --opset, or report this spec as an export bug") from None
        pairs = [(name, o.numpy(), g) for name, o, g in zip(names, ours, got)]
        pairs += [(f"{name} logits", our_logits[name].numpy(), g.reshape(our_logits[name].shape))
                  for name, g in zip(logits, got[len(outputs):])]
        differences = [(name, compare(a, b)) for name, a, b in pairs]
        shape = " and ".join(dims_text(a.shape) for a in arrays)
        check = Check("random", list(arrays[0].shape), max(d.max_abs for _, d in differences),
                      max(d.max_rel for _, d in differences), max(d.nonfinite for _, d in differences),
                      ", ".join(name for name, _ in differences))
        wrong = [name for name, d in differences if not d.agree]
        if wrong:
            raise SpecError.at(None, f"ONNX Runtime disagrees with PyTorch on random inputs {shape} ({', '.join(wrong)}): "
                                     f"max abs diff {check.max_abs_diff:.3g}, max relative diff {check.max_rel_diff:.3g} "
                                     f"(allowed {FP32_TOLERANCE:g} + {FP32_RELATIVE_TOLERANCE:g} x |value|); nothing "
                                     f"was written to {output}",
                               "try another --opset, or report the layer kinds of this spec as an export bug")
        checks.append(check)
    return checks


def _as_tuple(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def _metadata(model, inputs: list[GraphInput], outputs: list[GraphOutput], labels, weights_file,
              record: RunRecord | None, preprocess, normalization) -> OnnxMetadata:
    ir_model = model.ir
    run_id = (record.run_id if record is not None else None) or (preprocess.run_id if preprocess else None)

    def layout(graph_input: GraphInput) -> str:
        if graph_input.kind == "image":
            return "NCHW" if len(graph_input.dims) == 3 else "NCL"
        return LAYOUTS.get(graph_input.kind, "N...")

    return OnnxMetadata(
        version=__version__, model=ir_model.name, spec=ir_model.source, spec_path=str(ir_model.path),
        inputs=[OnnxInput(name=i.name, kind=i.kind, layout=layout(i), shape=list(i.dims),
                          dtype="int64" if i.dtype == "int" else "float32", vocab=i.vocab) for i in inputs],
        outputs=[OnnxOutput(name=o.name, shape=list(o.dims), activation=o.final) for o in outputs],
        labels=labels, normalization=normalization, normalization_in_graph=True,
        text=preprocess.text if preprocess is not None and any(i.kind == "tokens" for i in inputs) else None,
        weights=str(weights_file) if weights_file is not None else "initialized", run_id=run_id,
        preprocess=preprocess.model_dump(mode="json", exclude={"text", "normalize"}) if preprocess else {})


__all__ = ["GraphExported", "export_graph", "sample_inputs"]

"""Parity: the same inputs through PyTorch and ONNX Runtime must give the same numbers.

What is compared is the logits (the values entering the final softmax/sigmoid) as well as
the output: probabilities of an untrained 1000-class model are all about 0.001, so an
absolute tolerance on them alone proves nothing. Values agree when
|onnx - torch| <= FP32_TOLERANCE + FP32_RELATIVE_TOLERANCE * |torch| (numpy.isclose's rule;
torch.onnx's own verification uses the same relative 1e-3), and inf and NaN count as
agreeing when they sit at the same places with the same sign: a model whose outputs hold
them on random inputs (`relu -> log`) still exports when both runtimes agree.

An error raised by ONNX Runtime becomes a SpecError naming the spec layer whose node
failed, found from the node's name (rerunning without graph optimizations when the
failing node is one ONNX Runtime fused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import Diagnostic, SpecError
from ..length_range import sample_lengths
from .data import RunData
from .locate import layer_index, layer_of_node
from .messages import first_line
from .prepare import Inputs, Prepared, dims_of, input_list, n_samples, rows, sample_input
from .report import Check

FP32_TOLERANCE = 1e-4  # absolute
FP32_RELATIVE_TOLERANCE = 1e-3
CHUNK = 256
VALIDATION_LIMIT = 2048
RANDOM_CASES = ((1, None), (3, None))
RANDOM_CASES_DYNAMIC = ((1, 5), (3, 23), (3, 5), (1, 23))  # (batch, sequence length)
NODE = re.compile(r"running (\w+) node\. Name:'([^']*)'")
STATUS = re.compile(r"Status Message: (.*)")


def ort_session(data: bytes, optimized: bool = True, folder: Path | None = None):
    """An ONNX Runtime session of a serialized model; `folder` holds its external data file."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # errors are reported as SpecErrors
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if folder is not None:
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(folder))
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


@dataclass
class OrtGraph:
    """The exported graph in ONNX Runtime: its outputs, and the logits of each output that
    ends in softmax/sigmoid, where they differ from it."""

    data: bytes  # the serialized graph the session runs (the file's, plus the logits outputs)
    session: Any
    input_names: list[str]
    output_names: list[str]
    logits_names: dict[str, str] = field(default_factory=dict)  # output -> a further output of `session`
    logits_session: Any = None  # a separate logits graph (every output's logits), for those not in `logits_names`
    classifiers: tuple[str, ...] = ()  # the outputs whose logits are compared
    folder: Path | None = None  # where the graph's external data file lies

    def feed(self, x: Inputs) -> dict[str, np.ndarray]:
        return dict(zip(self.input_names, input_list(x)))

    def run(self, x: Inputs) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Each output, and each output's logits (None where not compared), in chunks."""
        names = self.output_names + list(self.logits_names.values())
        chunks = []
        for start in range(0, n_samples(x), CHUNK):
            chunk = self.feed(rows(x, start, start + CHUNK))
            results = self.session.run(names, chunk)
            separate = (self.logits_session.run(None, chunk) if self.logits_session is not None else None)
            logits = []
            for i, name in enumerate(self.output_names):
                if name in self.logits_names:
                    logits.append(results[len(self.output_names) + list(self.logits_names).index(name)])
                elif separate is not None and name in self.classifiers:
                    logits.append(separate[i])
                else:
                    logits.append(None)
            chunks.append((results[:len(self.output_names)], logits))
        outputs = [np.concatenate([c[0][i] for c in chunks]) for i in range(len(self.output_names))]
        logits = [None if chunks[0][1][i] is None else np.concatenate([c[1][i] for c in chunks])
                  for i in range(len(self.output_names))]
        return outputs, logits


@dataclass
class Difference:
    max_abs: float
    max_rel: float
    nonfinite: int
    agree: bool


def compare(reference: np.ndarray, got: np.ndarray) -> Difference:
    """How far ONNX Runtime's values are from PyTorch's (the tolerances are read at each call)."""
    if reference.shape != got.shape:
        return Difference(np.inf, np.inf, 0, False)
    a, b = reference.astype(np.float64), got.astype(np.float64)
    finite_a, finite_b = np.isfinite(a), np.isfinite(b)
    same_places = np.array_equal(finite_a, finite_b) and np.array_equal(a[~finite_a], b[~finite_b], equal_nan=True)
    if not same_places:
        return Difference(np.inf, np.inf, int((~finite_a | ~finite_b).sum()), False)
    a, b = a[finite_a], b[finite_a]
    if a.size == 0:
        return Difference(0.0, 0.0, int((~finite_a).sum()), True)
    diff = np.abs(a - b)
    rel = diff / np.maximum(np.abs(a), np.finfo(np.float32).tiny)
    agree = bool(np.all(diff <= FP32_TOLERANCE + FP32_RELATIVE_TOLERANCE * np.abs(a)))
    return Difference(float(diff.max()), float(rel.max()), int((~finite_a).sum()), agree)


def torch_run(p: Prepared, x: Inputs) -> tuple:
    """The output and (for a model ending in softmax/sigmoid) the logits, in chunks; for a
    graph, a tuple of each output and a tuple of each output's logits (None where it has no
    final softmax/sigmoid)."""
    outputs, logits = [], []
    with torch.no_grad():
        for start in range(0, n_samples(x), CHUNK):
            chunk = [torch.from_numpy(np.ascontiguousarray(a)) for a in input_list(rows(x, start, start + CHUNK))]
            outputs.append([t.numpy() for t in _as_tuple(p.wrapper(*chunk))])
            if p.is_classifier:
                logits.append([t.numpy() for t in _as_tuple(p.wrapper.forward_logits(*chunk))])
    joined = [np.concatenate([c[i] for c in outputs]) for i in range(len(p.outputs))]
    joined_logits = [np.concatenate([c[i] for c in logits]) if logits and o.is_classifier else None
                     for i, o in enumerate(p.outputs)]
    if not p.is_graph:
        return joined[0], joined_logits[0]
    return tuple(joined), tuple(joined_logits)


def per_output(p: Prepared, value) -> list:
    """torch_run's output (or logits) as a list, one entry per output."""
    if value is None:
        return [None] * len(p.outputs)
    return list(value) if isinstance(value, tuple) else [value]


def _as_tuple(result) -> tuple:
    return result if isinstance(result, tuple) else (result,)


def predicted_classes(y: np.ndarray) -> np.ndarray:
    """Top class per sample: argmax, or the 0.5 threshold of a single output."""
    y = y.reshape(len(y), -1)
    return (y[:, 0] > 0.5).astype(np.int64) if y.shape[1] == 1 else np.argmax(y, axis=1)


def accuracy(y_pred: np.ndarray, y_true: np.ndarray | None) -> float | None:
    """Share of samples whose top class is the label (labels as ids or one-hot); None without labels."""
    if y_true is None or y_pred.ndim > 2:  # a class per position (segmentation, sequences): not one per sample
        return None
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        y_true = np.argmax(y_true, axis=1)
    y_true = y_true.reshape(-1)
    pred = predicted_classes(y_pred)
    if len(pred) != len(y_true):
        return None
    return float(np.mean(pred == y_true.astype(np.int64)))


def verify(p: Prepared, model, graph: OrtGraph, data: RunData | None, output: str) -> tuple[list[Check], dict | None]:
    """Random inputs at two batch sizes (two lengths when dynamic), then the run's validation
    data; the checks and the validation summary. SpecError on any disagreement."""
    rng = np.random.default_rng(1)
    dynamic = any(isinstance(d, str) for i in p.inputs for d in i.dims)
    checks = []
    cases = RANDOM_CASES
    if dynamic:  # the lengths the model takes (length_range.py) nearest to the usual ones
        lengths = sample_lengths(model.info, tuple(length for _, length in RANDOM_CASES_DYNAMIC))
        cases = tuple((batch, length) for (batch, _), length in zip(RANDOM_CASES_DYNAMIC, lengths))
    for batch, length in cases:
        x = in_domain(p, sample_input(p, batch, length, rng))
        check, _, _ = _check(p, model, graph, "random", x, output)
        checks.append(check)
    validation = None
    if data is not None and data.x_val is not None:
        x, y = rows(data.x_val, 0, VALIDATION_LIMIT), (data.y_val[:VALIDATION_LIMIT] if data.y_val is not None else None)
        check, reference, got = _check(p, model, graph, "validation", x, output)
        checks.append(check)
        validation = {"samples": n_samples(x), "source": data.source, "max_abs_diff": check.max_abs_diff,
                      "accuracy_torch": accuracy(per_output(p, reference)[0], y), "accuracy_onnx": accuracy(got[0], y)}
    return checks, validation


def in_domain(p: Prepared, x: Inputs) -> Inputs:
    """`x`, or its magnitudes when PyTorch's output on it holds NaN: a NaN comes from an input
    outside the model's domain (`log` of a negative value), where runtimes differ in what
    follows it (PyTorch's max and max pooling keep a NaN, ONNX Runtime's drop it), so the
    graphs are compared where the function is defined. Token ids are left as they are."""
    if not any(np.isnan(out).any() for out in per_output(p, torch_run(p, x)[0])):
        return x
    magnitudes = [np.abs(a).astype(a.dtype) if a.dtype.kind == "f" else a for a in input_list(x)]
    return tuple(magnitudes) if isinstance(x, tuple) else magnitudes[0]


def _check(p: Prepared, model, graph: OrtGraph, what: str, x: Inputs, output: str) -> tuple[Check, Any, list]:
    reference, reference_logits = torch_run(p, x)
    try:
        got, got_logits = graph.run(x)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
        raise runtime_error(graph.data, graph.feed(rows(x, 0, CHUNK)), model, error, f"{what} inputs {dims_of(x)}",
                            output, graph.folder) from None
    differences = []  # (what was compared, how far apart)
    for out, ours, theirs, our_logits, their_logits in zip(p.outputs, per_output(p, reference), got,
                                                            per_output(p, reference_logits), got_logits):
        label = f"{out.name} " if p.is_graph else ""
        if our_logits is not None and their_logits is not None:
            if their_logits.size == our_logits.size:
                their_logits = their_logits.reshape(our_logits.shape)
            differences.append((f"{label}logits", compare(our_logits, their_logits)))
        differences.append((out.name if p.is_graph else "output", compare(ours, theirs)))
    compared = " and ".join(name for name, _ in differences) if not p.is_graph else ", ".join(
        name for name, _ in differences)
    shape = list(input_list(x)[0].shape)
    check = Check(what, shape, max(d.max_abs for _, d in differences), max(d.max_rel for _, d in differences),
                  max(d.nonfinite for _, d in differences), compared)
    nan_apart = [out.name for out, ours, theirs in zip(p.outputs, per_output(p, reference), got)
                 if not np.array_equal(np.isnan(ours), np.isnan(np.asarray(theirs).reshape(np.shape(ours))))]
    if not all(d.agree for _, d in differences) and nan_apart:
        raise SpecError.at(None, f"ONNX Runtime and PyTorch disagree on where the output is NaN on {what} inputs "
                                 f"{dims_of(x)}: the model computes NaN on them, and the runtimes differ in "
                                 f"what follows a NaN (max pooling and max: PyTorch keeps it, ONNX Runtime drops it); "
                                 f"nothing was written to {output}",
                           "keep the values finite where NaN appears (`relu` or `abs` before `log` or `sqrt`)")
    if not all(d.agree for _, d in differences):
        wrong = ", ".join(name for name, d in differences if not d.agree)
        raise SpecError.at(None, f"ONNX Runtime disagrees with PyTorch on {what} inputs {dims_of(x)} "
                                 f"({check.compared if not p.is_graph else wrong}): max abs diff "
                                 f"{check.max_abs_diff:.3g}, max relative diff "
                                 f"{check.max_rel_diff:.3g} (allowed {FP32_TOLERANCE:g} + {FP32_RELATIVE_TOLERANCE:g} "
                                 f"x |value|, inf and NaN at the same places); nothing was written to {output}",
                           "try another --opset, or report the layer kinds of this spec as an export bug")
    return check, reference, got


def runtime_error(data: bytes, inputs: dict[str, np.ndarray] | None, model, error: BaseException, what: str | None,
                  output: str, folder: Path | None = None) -> SpecError:
    """An ONNX Runtime failure as a SpecError at the spec layer whose node failed: running
    `data` (external data in `folder`) on `inputs` (described by `what`), or loading it (`inputs` None)."""
    op, node, status = _parse(first_line(error), str(error))
    layers = layer_index(model.info.layers)
    layer = layer_of_node(node, layers) if node else None
    only_optimized = False
    if layer is None and inputs is not None:  # a node ONNX Runtime fused: find it in the plain graph
        try:
            ort_session(data, optimized=False, folder=folder).run(None, inputs)
            only_optimized = True
        except Exception as plain_error:  # noqa: BLE001 - onnxruntime raises its own kinds
            plain = _parse(first_line(plain_error), str(plain_error))
            if plain[1]:
                op, node, status = plain
                layer = layer_of_node(node, layers)
    action = f"run {{what}} on {what}" if what else "load {what}"
    if only_optimized:
        action += " (only with ONNX Runtime's graph optimizations)"
    hint = (f"try another --opset, or report this spec as an export bug; nothing was written to {output}")
    if layer is not None:
        graph = f"layer `{layer.node.kind}` ({layer.path}) of the exported graph"
        return SpecError(Diagnostic(f"ONNX Runtime cannot {action.format(what=graph)}: {status}", layer.node.span,
                                    hint), model.ir.source)
    graph = "the exported graph" + (f" ({op} node `{node}`)" if node else "")
    return SpecError.at(None, f"ONNX Runtime cannot {action.format(what=graph)}: {status}", hint)


def _parse(line: str, text: str) -> tuple[str | None, str | None, str]:
    """(op type, node name, the status message) from an ONNX Runtime error."""
    node = NODE.search(text)
    status = STATUS.search(text)
    message = status.group(1).strip() if status else re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", line)
    return (node.group(1), node.group(2), message) if node else (None, None, message)

"""int8 quantization of the exported (and verified) fp32 model, with onnxruntime's tools.

Convolutional models get static QDQ quantization (per-channel signed int8 weights,
unsigned int8 activations: the pairing x86 VNNI kernels run fast, and dense layers keep
float outputs) calibrated on data: the run's training data, else the bundled digits adapted
to the input (image models), else random inputs, and the report says which. Dynamic
quantization would make convolutions ConvInteger, which on CPU is slower than fp32
(measured on LeNet-5: about 2x at batch 1). Dense and recurrent models get dynamic
quantization (int8 weights, activation ranges computed at run time); dense layers,
exported as Gemm, are first rewritten to MatMul + Add (passes.GemmToMatMul), which
onnxruntime's dynamic quantizer handles. The final softmax/sigmoid stays in float.

The int8 model is checked against the fp32 one on the run's validation data (or on other
inputs): it fails when the top class agrees on fewer than INT8_MIN_AGREEMENT of the
validation samples that fp32 decides clearly (margin above DECIDED_MARGIN; near-ties flip
under any rounding), or the mean difference is above INT8_MAX_MEAN_DIFF (probabilities;
other outputs relative to their mean magnitude). The report gives the size ratio and the
batch-1 latency ratio, and says plainly when int8 is slower. The file holds the int8 model
only where it is faster than fp32 at batch 1 on this machine (`--quantize int8`); where it
is not, the verified fp32 model is written and the report says why, unless int8 is forced
(`--quantize int8-force`: smaller files, or a deployment target other than this CPU).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from ..errors import SpecError
from ..layers.base import kernel_ops
from .data import RunData, digits_images
from .exporter import quiet
from .messages import first_line
from .passes import GemmToMatMul, shape_info
from .prepare import Prepared, sample_input
from .verify import VALIDATION_LIMIT, OrtGraph, accuracy, ort_session, predicted_classes

INT8 = "int8"  # int8 where it is faster than fp32, else fp32
INT8_FORCED = "int8-force"  # int8 whatever its speed
QUANTIZE_CHOICES = (INT8, INT8_FORCED)
CALIBRATION_SAMPLES = 256
INT8_MIN_AGREEMENT = 0.90  # on the validation samples that fp32 decides clearly
INT8_MAX_MEAN_DIFF = 0.05  # on probabilities
INT8_MAX_RELATIVE_DIFF = 0.10  # other outputs: relative to their mean magnitude
# A sample counts for top-class agreement when fp32's top probability beats the runner-up
# by more than this (for a single sigmoid: |2p - 1|); closer calls may flip under any rounding.
DECIDED_MARGIN = 0.1
FLOAT_OPS = ("Softmax", "Sigmoid", "LogSoftmax", "Pad")  # Pad: `maxpool pad=same` pads with -inf


def margin(y: np.ndarray) -> np.ndarray:
    """How clearly fp32 decides each sample: top probability minus the runner-up."""
    y = y.reshape(len(y), -1).astype(np.float64)
    if y.shape[1] == 1:
        return np.abs(2 * y[:, 0] - 1)
    top = np.sort(y, axis=1)
    return top[:, -1] - top[:, -2]


def uses_convolution(model: ir.Model) -> bool:
    """Convolutional models (any Conv node in the exported graph) get static quantization."""
    return any(node.op_type in ("Conv", "ConvTranspose") for node in model.graph)


def calibration_data(p: Prepared, data: RunData | None) -> tuple[np.ndarray, str]:
    if data is not None and data.x_train is not None:
        x = data.x_train[:CALIBRATION_SAMPLES]
        return x, f"{len(x)} samples of the run's training data ({data.train_source})"
    if data is not None and data.x_val is not None:
        x = data.x_val[:CALIBRATION_SAMPLES]
        return x, f"{len(x)} samples of the run's validation data ({data.source}; no training data found)"
    if p.input_kind == "image" and len(p.dims) == 3 and all(isinstance(d, int) for d in p.dims):
        channels, height, width = p.dims
        x, _ = digits_images(channels, height, width, CALIBRATION_SAMPLES)
        return x, (f"{len(x)} bundled digits images adapted to {channels}x{height}x{width} as `specc train` "
                   "adapts them (no run data)")
    rng = np.random.default_rng(2)
    x = np.concatenate([sample_input(p, 16, 32, rng) for _ in range(CALIBRATION_SAMPLES // 16)])
    return x, f"{len(x)} RANDOM inputs (no run data): activation ranges are a guess; export with --weights RUN"


class CalibrationReader:
    """onnxruntime's CalibrationDataReader over an array, in batches."""

    def __init__(self, name: str, x: np.ndarray, batch: int = 32):
        self.name, self.x, self.batch, self.at = name, x, batch, 0

    def get_next(self):
        if self.at >= len(self.x):
            return None
        chunk = self.x[self.at:self.at + self.batch]
        self.at += self.batch
        return {self.name: chunk}

    def rewind(self):
        self.at = 0


def _latency_ms(session, name: str, x: np.ndarray, budget_s: float = 0.4) -> float:
    for _ in range(3):
        session.run(None, {name: x})
    times, start = [], time.perf_counter()
    while len(times) < 20 or (time.perf_counter() - start < budget_s and len(times) < 2000):
        t = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def interleaved_latency(sessions: list, name: str, x: np.ndarray, rounds: int = 5) -> list[float]:
    """Median batch-1 latency (ms) of each session, measured in alternating rounds."""
    results: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for i, session in enumerate(sessions):
            results[i].append(_latency_ms(session, name, x, budget_s=0.08))
    return [float(np.median(r)) for r in results]


def _quantized_bytes(p: Prepared, model, fp32: bytes, data: RunData | None) -> tuple[bytes, bool, str | None]:
    """(the int8 model, whether it was quantized statically, the calibration note)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory(prefix="specc-int8-") as folder:
        source, prepared, target = Path(folder) / "fp32.onnx", Path(folder) / "pre.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(fp32)
        try:
            with quiet():
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=p.dtype != "int")
        except Exception:  # noqa: BLE001 - pre-processing is an optimization only
            prepared.write_bytes(fp32)
        graph = ir.load(str(prepared))
        static = uses_convolution(graph)
        # Float stays where int8 would be wrong: the final probabilities, and Pad, which the
        # exporter uses with a -inf fill for `maxpool pad=same` (-inf does not quantize).
        exclude = [node.name for node in graph.graph if node.op_type in FLOAT_OPS]
        note = None
        try:
            with quiet():
                if static:
                    x_cal, note = calibration_data(p, data)
                    quantize_static(ir.to_proto(graph), str(target), CalibrationReader(p.input_name, x_cal),
                                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                                    weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                                    # U8 activations x S8 weights is the form x86 VNNI runs fast (bench/int8.py:
                                    # ResNet-18 0.28x fp32; S8S8 0.83-0.96x); float Gemm outputs keep top-1 agreement
                                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                                   "OpTypesToExcludeOutputQuantization": ["Gemm"]})
                else:
                    GemmToMatMul()(graph)
                    quantize_dynamic(ir.to_proto(graph), str(target), weight_type=QuantType.QInt8,
                                     op_types_to_quantize=kernel_ops(model.info.kinds),
                                     nodes_to_exclude=exclude, per_channel=False)
            int8 = ir.to_proto(shape_info(ir.load(str(target)))).SerializeToString()
        except SpecError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime's tools raise many kinds
            raise SpecError.at(None, f"int8 quantization failed: {first_line(error)}",
                               "export without --quantize, or report this spec") from None
    return int8, static, note


def kept_form(fp32_ms: float, int8_ms: float, forced: bool) -> tuple[str, str]:
    """Which model the file holds, "int8" or "fp32", and why: int8 only where its batch-1
    latency is below fp32's, unless forced."""
    ratio = f"{int8_ms / fp32_ms:.2f}x the fp32 latency at batch 1"
    if int8_ms < fp32_ms:
        return INT8, f"int8 is faster ({ratio})"
    if forced:
        return INT8, f"forced with --quantize {INT8_FORCED}, although int8 is not faster ({ratio})"
    return "fp32", (f"int8 is not faster ({ratio}) on this machine, so the fp32 model is written; "
                    f"--quantize {INT8_FORCED} writes the int8 model anyway")


def quantize_int8(p: Prepared, model, fp32: bytes, fp32_graph: OrtGraph, data: RunData | None,
                  forced: bool = False) -> tuple[bytes | None, dict[str, Any]]:
    """The int8 model, checked against fp32, and the report's `quantization` entry; the
    model is None where fp32 is kept (`kept_form`)."""
    int8, static, calibration_note = _quantized_bytes(p, model, fp32, data)
    try:
        int8_session = ort_session(int8)
    except Exception as error:  # noqa: BLE001
        raise SpecError.at(None, f"the int8 model does not load in ONNX Runtime: {first_line(error)}") from None
    if data is not None and data.x_val is not None:
        x, y = data.x_val[:VALIDATION_LIMIT], (data.y_val[:VALIDATION_LIMIT] if data.y_val is not None else None)
        on = f"{len(x)} validation samples"
    else:
        rng = np.random.default_rng(3)
        x = calibration_data(p, data)[0] if static else np.concatenate([sample_input(p, 32, 32, rng) for _ in range(4)])
        y, on = None, f"{len(x)} {'calibration' if static else 'random'} inputs (no validation data)"
    int8_graph = OrtGraph(int8, int8_session, p.input_name, p.output_name)
    try:
        ref, got = fp32_graph.run(x)[0], int8_graph.run(x)[0]
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own kinds
        raise SpecError.at(None, f"the int8 model fails in ONNX Runtime on {on}: {first_line(error)}",
                           "export in fp32 (without --quantize)") from None
    abs_diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    mean_diff, max_diff = float(abs_diff.mean()), float(abs_diff.max())
    agreement = decided_agreement = None
    if p.is_classifier:
        same = predicted_classes(ref) == predicted_classes(got)
        decided = margin(ref) > DECIDED_MARGIN
        agreement = float(np.mean(same))
        decided_agreement = float(np.mean(same[decided])) if decided.any() else None
    allowed = INT8_MAX_MEAN_DIFF if p.is_classifier else INT8_MAX_RELATIVE_DIFF * max(float(np.abs(ref).mean()), 1e-6)
    problems = []
    if y is not None and decided_agreement is not None and decided_agreement < INT8_MIN_AGREEMENT:
        problems.append(f"the top class agrees with fp32 on only {decided_agreement:.1%} of the {on} that fp32 "
                        f"decides by a margin above {DECIDED_MARGIN:g} (needs {INT8_MIN_AGREEMENT:.0%})")
    if not mean_diff <= allowed:
        problems.append(f"mean abs diff from fp32 is {mean_diff:.3g} (allowed {allowed:.3g})")
    if problems:
        raise SpecError.at(None, "the int8 model is too far from fp32: " + "; ".join(problems) + "; nothing was written",
                           "export in fp32 (without --quantize)")
    fp32_ms, int8_ms = interleaved_latency([ort_session(fp32), int8_session], p.input_name, x[:1])
    acc_fp32, acc_int8 = accuracy(ref, y), accuracy(got, y)
    kept, kept_reason = kept_form(fp32_ms, int8_ms, forced)
    return (int8 if kept == INT8 else None), {
        "kept": kept, "kept_reason": kept_reason,
        "method": "static QDQ, per-channel int8 weights, int8 activations" if static
        else "dynamic (int8 weights; activations quantized at run time)",
        "calibration": calibration_note,
        "fp32_bytes": len(fp32), "int8_bytes": len(int8), "size_ratio": len(int8) / len(fp32),
        "fp32_latency_ms": fp32_ms, "int8_latency_ms": int8_ms, "latency_ratio": int8_ms / fp32_ms,
        "slower_than_fp32": int8_ms > fp32_ms,
        "agreement_on": on, "agreement": agreement, "agreement_decided": decided_agreement,
        "mean_abs_diff": mean_diff, "max_abs_diff": max_diff,
        "criterion": f"top-class agreement >= {INT8_MIN_AGREEMENT:.0%} on the validation samples fp32 decides by a "
                     f"margin above {DECIDED_MARGIN:g}; mean abs diff <= {INT8_MAX_MEAN_DIFF:g} for probabilities, "
                     f"else <= {INT8_MAX_RELATIVE_DIFF:.0%} of the mean output magnitude",
        "accuracy_fp32": acc_fp32, "accuracy_int8": acc_int8,
        "accuracy_change": (acc_int8 - acc_fp32) if acc_fp32 is not None and acc_int8 is not None else None,
    }

"""int8 quantization of an exported (and verified) fp32 ONNX model, with onnxruntime's tools.

Convolutional models get static QDQ quantization (per-channel int8 weights, int8
activations) calibrated on data: the run's training data when the run saved a sample,
else the bundled digits adapted to the input (image models), else random inputs, and the
report says which. Dynamic quantization would make convolutions ConvInteger, which on
CPU is slower than fp32 (measured on LeNet-5: about 2x at batch 1). Dense and recurrent
models get dynamic quantization (int8 weights, activation ranges computed at run time);
dense layers, exported as Gemm, are first rewritten to MatMul + Add, which onnxruntime's
dynamic quantizer handles. The final softmax/sigmoid stays in float.

The int8 model is checked against the fp32 one on the run's validation data (or on random
inputs): the share of samples whose top class agrees, and the mean absolute difference.
It fails when agreement is below INT8_MIN_AGREEMENT on the validation samples that fp32
decides clearly (margin above DECIDED_MARGIN; near-ties flip under any rounding), or the mean
difference is above INT8_MAX_MEAN_DIFF (probabilities; other outputs relative to their
mean magnitude). It also reports the size ratio and the batch-1 latency ratio, and says
plainly when int8 is slower.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from ..layers.base import kernel_ops
from .onnx_export import (INT8_MAX_MEAN_DIFF, INT8_MAX_RELATIVE_DIFF, INT8_MIN_AGREEMENT, Prepared,
                          _accuracy, _first_line, _ort_run, _quiet, ort_session,
                          predicted_classes, run_data, sample_input, validation_data)

CALIBRATION_SAMPLES = 256
# A sample counts for top-class agreement when fp32's top probability beats the runner-up
# by more than this (for a single sigmoid: |2p - 1|); closer calls may flip under any rounding.
DECIDED_MARGIN = 0.1


def _margin(y: np.ndarray) -> np.ndarray:
    y = y.reshape(len(y), -1).astype(np.float64)
    if y.shape[1] == 1:
        return np.abs(2 * y[:, 0] - 1)
    top = np.sort(y, axis=1)
    return top[:, -1] - top[:, -2]


def uses_convolution(proto) -> bool:
    """Convolutional models (any Conv node in the exported graph) get static quantization."""
    return any(node.op_type in ("Conv", "ConvTranspose") for node in proto.graph.node)


def digits_images(channels: int, height: int, width: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits adapted as `specc train` adapts them (training/data.py): scaled
    from 0..16 to [0, 1], resized to height x width (bilinear, align_corners=False), repeated
    over the channels. Returns (images, labels)."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy((digits.images[:limit] / 16.0).astype(np.float32))[:, None]
    if images.shape[-2:] != (height, width):
        images = torch.nn.functional.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    return images.repeat(1, channels, 1, 1).numpy(), digits.target[:limit].astype(np.int64)


def calibration_data(p: Prepared, model) -> tuple[np.ndarray, str]:
    data = run_data(p, model)
    if data is not None and data.x_train is not None:
        x = data.x_train[:CALIBRATION_SAMPLES]
        return x, f"{len(x)} samples of the run's training data ({data.train_source})"
    if data is not None and data.x_val is not None:
        x = data.x_val[:CALIBRATION_SAMPLES]
        return x, f"{len(x)} samples of the run's validation data ({data.source}; no training data found)"
    if p.dtype != "int" and p.metadata.get("specc.image", "null") != "null" and len(p.dims) == 3:
        channels, height, width = p.dims
        x, _ = digits_images(channels, height, width, CALIBRATION_SAMPLES)
        return x, (f"{len(x)} bundled digits images adapted to {channels}x{height}x{width} as `specc train` "
                   "adapts them (no run data)")
    rng = np.random.default_rng(2)
    x = np.concatenate([sample_input(p, 16, 32, rng) for _ in range(CALIBRATION_SAMPLES // 16)])
    return x, f"{len(x)} RANDOM inputs (no run data): activation ranges are a guess; export with --weights RUN"


class _Reader:
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


def gemm_to_matmul(proto) -> int:
    """Rewrite Gemm nodes with a constant B (dense layers) as MatMul + Add, in place."""
    import onnx
    from onnx import helper, numpy_helper

    inits = {init.name: init for init in proto.graph.initializer}
    rewritten, nodes = 0, []
    for node in proto.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "Gemm" or node.input[1] not in inits or attrs.get("transA", 0)
                or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0):
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            weight = weight.T
        name = f"{node.name or node.output[0]}_matmul_weight"
        proto.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight), name))
        product = f"{node.output[0]}_matmul"
        has_bias = len(node.input) > 2 and node.input[2]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [product if has_bias else node.output[0]],
                                      name=f"{node.name}_MatMul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
        rewritten += 1
    if rewritten:
        del proto.graph.node[:]
        proto.graph.node.extend(nodes)
        used = {i for n in proto.graph.node for i in n.input}
        keep = [init for init in proto.graph.initializer if init.name in used]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(keep)
        onnx.checker.check_model(proto)
    return rewritten


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


def quantize_int8(p: Prepared, model, fp32: bytes, fp32_session) -> tuple[bytes, dict[str, Any]]:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_dynamic, quantize_static

    static = uses_convolution(onnx.load_from_string(fp32))
    calibration_note = None
    with tempfile.TemporaryDirectory(prefix="specc-int8-") as folder:
        folder = Path(folder)
        source, prepared, target = folder / "fp32.onnx", folder / "pre.onnx", folder / "int8.onnx"
        source.write_bytes(fp32)
        try:
            with _quiet():
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=p.dtype != "int")
        except Exception:  # noqa: BLE001 - pre-processing is an optimization only
            prepared.write_bytes(fp32)
        proto = onnx.load(str(prepared))
        # Float stays where int8 would be wrong: the final probabilities, and Pad, which the
        # exporter uses with a -inf fill for `maxpool pad=same` (-inf does not quantize).
        exclude = [n.name for n in proto.graph.node if n.op_type in ("Softmax", "Sigmoid", "LogSoftmax", "Pad")]
        try:
            with _quiet():
                if static:
                    x_cal, calibration_note = calibration_data(p, model)
                    quantize_static(proto, str(target), _Reader(p.input_name, x_cal), quant_format=QuantFormat.QDQ,
                                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                    nodes_to_exclude=exclude,
                                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
                else:
                    gemm_to_matmul(proto)
                    quantize_dynamic(proto, str(target), weight_type=QuantType.QInt8,
                                     op_types_to_quantize=kernel_ops(model.info.kinds),
                                     nodes_to_exclude=exclude, per_channel=False)
            int8 = target.read_bytes()
        except SpecError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime's tools raise many kinds
            raise SpecError.at(None, f"int8 quantization failed: {_first_line(error)}",
                               "export without --quantize, or report this spec") from None
    try:
        int8_session = ort_session(int8)
    except Exception as error:  # noqa: BLE001
        raise SpecError.at(None, f"the int8 model does not load in ONNX Runtime: {_first_line(error)}") from None

    data = validation_data(p, model)
    if data is not None:
        x, y, on = data[0], data[1], f"{len(data[0])} validation samples"
    else:
        rng = np.random.default_rng(3)
        x = calibration_data(p, model)[0] if static else np.concatenate([sample_input(p, 32, 32, rng) for _ in range(4)])
        y, on = None, f"{len(x)} {'calibration' if static else 'random'} inputs (no validation data)"
    ref, got = _ort_run(fp32_session, p.input_name, x), _ort_run(int8_session, p.input_name, x)
    abs_diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    mean_diff, max_diff = float(abs_diff.mean()), float(abs_diff.max())
    probabilities = p.final in ("softmax", "sigmoid")
    agreement = decided_agreement = None
    if probabilities:
        same = predicted_classes(ref) == predicted_classes(got)
        decided = _margin(ref) > DECIDED_MARGIN  # near-ties may flip under any rounding
        agreement = float(np.mean(same))
        decided_agreement = float(np.mean(same[decided])) if decided.any() else None
    allowed = INT8_MAX_MEAN_DIFF if probabilities else INT8_MAX_RELATIVE_DIFF * max(float(np.abs(ref).mean()), 1e-6)
    problems = []
    if data is not None and decided_agreement is not None and decided_agreement < INT8_MIN_AGREEMENT:
        problems.append(f"the top class agrees with fp32 on only {decided_agreement:.1%} of the {on} that fp32 "
                        f"decides by a margin above {DECIDED_MARGIN:g} (needs {INT8_MIN_AGREEMENT:.0%})")
    if not mean_diff <= allowed:
        problems.append(f"mean abs diff from fp32 is {mean_diff:.3g} (allowed {allowed:.3g})")
    if problems:
        raise SpecError.at(None, "the int8 model is too far from fp32: " + "; ".join(problems) + "; nothing was written",
                           "export in fp32 (without --quantize)")
    one = x[:1]
    fp32_ms, int8_ms = interleaved_latency([fp32_session, int8_session], p.input_name, one)
    acc_fp32, acc_int8 = _accuracy(ref, y), _accuracy(got, y)
    report = {
        "method": "static QDQ, per-channel int8 weights, int8 activations" if static
        else "dynamic (int8 weights; activations quantized at run time)",
        "calibration": calibration_note,
        "fp32_bytes": len(fp32), "int8_bytes": len(int8), "size_ratio": len(int8) / len(fp32),
        "fp32_latency_ms": fp32_ms, "int8_latency_ms": int8_ms, "latency_ratio": int8_ms / fp32_ms,
        "slower_than_fp32": int8_ms > fp32_ms,
        "agreement_on": on, "agreement": agreement, "agreement_decided": decided_agreement, "mean_abs_diff": mean_diff, "max_abs_diff": max_diff,
        "criterion": f"top-class agreement >= {INT8_MIN_AGREEMENT:.0%} on the validation samples fp32 decides by a "
                     f"margin above {DECIDED_MARGIN:g}; mean abs diff <= "
                     f"{INT8_MAX_MEAN_DIFF:g} for probabilities, else <= {INT8_MAX_RELATIVE_DIFF:.0%} of the mean "
                     "output magnitude",
        "accuracy_fp32": acc_fp32, "accuracy_int8": acc_int8,
        "accuracy_change": (acc_int8 - acc_fp32) if acc_fp32 is not None and acc_int8 is not None else None,
    }
    return int8, report


__all__ = ["digits_images", "gemm_to_matmul", "interleaved_latency", "quantize_int8", "uses_convolution"]

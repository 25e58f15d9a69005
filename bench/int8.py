"""Which ONNX Runtime int8 form pays on this CPU: latency ratio and top-1 agreement against fp32.

    python bench/int8.py [--models lenet5,resnet18,spam_lstm] [--threads 1,2] [--batch 1] [--rounds 5]
                         [--budget 0.15] [--opsets 13,18,21] [--only TEXT] [--resnet-weights RUN]
                         [--keep DIR] [--json OUT]

For LeNet-5, ResNet-18 and the LSTM spam classifier it exports fp32 with specc (opset 17),
quantizes it once per configuration (format, signedness, per-channel, reduce_range, calibration,
extra options, pre-processing, opset, session options) and prints one row per configuration:

- ratio: int8 over fp32 latency (batch 1 unless --batch), same thread count. Each round times
  fp32 right before and after every configuration (median call over --budget seconds) and
  takes the ratio to their mean; the table shows the median over --rounds rounds: on a
  shared machine only such side-by-side ratios mean anything, not absolute times.
- kernels: compute nodes that run as int8 kernels (QLinearConv, QGemm, ...) / stay float,
  after ONNX Runtime's session-level graph optimization.
- agreement: the share of inputs whose top class (argmax; one sigmoid: p > 0.5) is the same
  in int8 and fp32, on the calibration and on held-out inputs; int8 held-out accuracy.

Models are made realistic where agreement would otherwise mean nothing:
- LeNet-5: trained 2 epochs on the bundled digits; calibrated on 256, checked on 1,541 more;
- ResNet-18 untrained gives near-uniform probabilities whose top class flips under any
  rounding, so its convolutions stay random but its BatchNorm statistics come from the
  calibration images and its dense layer is fitted (logistic regression) to classify digits
  from the pooled features (a harsh proxy: random features differ little between classes);
  inputs are digits adapted to 3x224x224. --resnet-weights RUN uses a trained run instead;
- the LSTM: trained 3 epochs on synthetic sequences where spam has more tokens from 1-20.
The winner per model is the fastest configuration with at least 99% agreement on the
calibration inputs (ratios within 5% of the fastest count as a tie, won by the higher
agreement); where no configuration beats fp32 the table says so.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper
from onnxruntime import quantization as oq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import spec_compiler  # noqa: E402
from spec_compiler.files import write_text_atomic  # noqa: E402

MIN_AGREEMENT = 0.99
CLEAR_MARGIN = 0.1
TIE = 1.05  # ratios within 5% of the fastest count as equally fast
LEVELS = {"ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "EXTENDED": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "BASIC": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "DISABLED": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
TYPES = {"U8": oq.QuantType.QUInt8, "S8": oq.QuantType.QInt8}
METHODS = {name: getattr(oq.CalibrationMethod, name) for name in ("MinMax", "Entropy", "Percentile")}
INT8_KERNELS = {"QLinearConv", "QLinearAdd", "QLinearMul", "QGemm", "QLinearMatMul", "QLinearAveragePool",
                "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu", "ConvInteger",
                "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM"}
FLOAT_KERNELS = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul", "Add", "LSTM", "AveragePool",
                 "GlobalAveragePool", "ReduceMean"}


@dataclass(frozen=True)
class Config:
    """One way to make and run the int8 file. Fields other than name/level/session decide the file."""

    name: str
    dynamic: bool = False
    quant_format: str = "QDQ"  # or QOperator
    activation: str = "U8"
    weight: str = "S8"
    per_channel: bool = True
    reduce_range: bool = False
    method: str = "MinMax"
    extra: tuple = ()  # extra_options as (key, value) pairs
    preprocess: bool = True  # onnxruntime's quant_pre_process (shape inference + optimization) first
    op_types: tuple = ()  # () = every op type the quantizer handles
    opset: int = 17
    level: str = "ALL"  # session graph optimization level
    session: tuple = ()  # session config entries as (key, value) pairs

    def file_key(self) -> Config:
        return replace(self, name="", level="ALL", session=())


REFERENCE = Config("QDQ U8S8 per-channel")
FLOAT_GEMM = (("OpTypesToExcludeOutputQuantization", ("Gemm",)),)  # dense layers give float: precise logits
SYMMETRY = (("ActivationSymmetric", False), ("WeightSymmetric", True))
# what spec_compiler/export/quantize.py writes for convolutional models
CURRENT = Config("current: QDQ U8S8 per-channel, float Gemm outputs", extra=SYMMETRY + FLOAT_GEMM)
STATIC_CONFIGS = [
    CURRENT,
    Config("QDQ S8S8 per-channel", activation="S8", extra=SYMMETRY),
    Config("QDQ S8S8 per-channel, qdqisint8allowed=1", activation="S8", extra=SYMMETRY,
           session=(("session.qdqisint8allowed", "1"),)),
    REFERENCE,
    Config("QDQ U8S8 per-tensor", per_channel=False),
    Config("QOperator U8S8 per-channel", quant_format="QOperator"),
    Config("QOperator U8S8 per-tensor", quant_format="QOperator", per_channel=False),
    Config("QDQ U8U8 per-tensor", weight="U8", per_channel=False),
    Config("QDQ U8S8 per-channel reduce_range", reduce_range=True),
    Config("QDQ U8S8 per-channel Entropy", method="Entropy"),
    Config("QDQ U8S8 per-channel Percentile", method="Percentile"),
    Config("QDQ U8S8 per-channel ActivationSymmetric", extra=(("ActivationSymmetric", True),)),
    Config("QDQ U8S8 per-channel KeepRemovableActivations", extra=(("QDQKeepRemovableActivations", True),)),
    Config("QDQ U8S8 per-channel, no quant_pre_process", preprocess=False),
    Config("QDQ U8S8 per-channel, session level EXTENDED", level="EXTENDED"),
    Config("QDQ U8S8 per-channel, session level BASIC", level="BASIC"),
    Config("QDQ U8S8 per-channel, session level DISABLED", level="DISABLED"),
]
LENET_CONFIGS = [Config("QDQ U8S8 per-channel, Conv only", op_types=("Conv",)),
                 Config("QDQ U8S8 per-channel, Gemm only", op_types=("Gemm",))]
DYNAMIC_OPS = ("MatMul", "LSTM", "Gather")
DYNAMIC_CONFIGS = [
    Config("current: dynamic S8 weights, MatMul+LSTM+Gather", dynamic=True, per_channel=False, op_types=DYNAMIC_OPS),
    Config("dynamic U8 weights, MatMul+LSTM+Gather", dynamic=True, weight="U8", per_channel=False, op_types=DYNAMIC_OPS),
    Config("dynamic S8 weights per-channel, MatMul+LSTM+Gather", dynamic=True, op_types=DYNAMIC_OPS),
    Config("dynamic S8 weights, LSTM only", dynamic=True, per_channel=False, op_types=("LSTM",)),
    Config("dynamic S8 weights, MatMul only", dynamic=True, per_channel=False, op_types=("MatMul",)),
    Config("static QDQ U8S8 per-channel (Gemm; LSTM stays float)", op_types=("Gemm",)),
]


@dataclass
class Case:
    """One model: its fp32 file, how to export it at another opset, and its inputs."""

    label: str
    fp32: bytes
    input_name: str
    x_cal: np.ndarray
    x_held: np.ndarray
    y_held: np.ndarray
    configs: list[Config]
    reference: Config  # the configuration the opset sweep re-exports
    export_at: Callable[[int], bytes]
    notes: list[str] = field(default_factory=list)


def digits(channels: int, size: int, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits as `specc train` adapts them: 0..16 -> [0, 1], bilinear resize, channels repeated."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.from_numpy((data.images[:count] / 16.0).astype(np.float32))[:, None]
    images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.repeat(1, channels, 1, 1).numpy(), data.target[:count].astype(np.int64)


def exporter(spec: Path, weights: Path | None, work: Path) -> Callable[[int], bytes]:
    model, files = spec_compiler.load(spec), {}

    def export_at(opset: int) -> bytes:
        if opset not in files:
            path = work / f"{spec.stem}.opset{opset}.onnx"
            model.export(path, weights=weights, opset=opset)
            files[opset] = path.read_bytes()
        return files[opset]
    return export_at


def lenet5(work: Path) -> Case:
    spec = ROOT / "specs/lenet5.spec"
    spec_compiler.load(spec).train(epochs=2, out=str(work / "lenet5_run"), progress=False)
    export_at = exporter(spec, work / "lenet5_run", work)
    x, y = digits(1, 32)
    return Case("LeNet-5", export_at(17), "input", x[:256], x[256:], y[256:], STATIC_CONFIGS + LENET_CONFIGS,
                REFERENCE, export_at,
                ["trained 2 epochs on the bundled digits; calibration: digits 0-255; held out: the other 1,541"])


def fit_resnet(work: Path, x_cal: np.ndarray, x_fit: np.ndarray, y_fit: np.ndarray) -> Path:
    """Random convolutions, BatchNorm statistics from the calibration images, a dense layer fitted to digits."""
    from safetensors.torch import save_file
    from sklearn.linear_model import LogisticRegression

    net = spec_compiler.load(ROOT / "specs/resnet18.spec").build(seed=0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over every batch
    dense = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    features: list[torch.Tensor] = []
    hook = dense.register_forward_hook(lambda _m, inputs, _out: features.append(inputs[0].detach()))
    with torch.no_grad():
        for mode, x in ((net.train, x_cal), (net.eval, x_fit)):
            mode()
            features.clear()
            for start in range(0, len(x), 16):
                net(torch.from_numpy(x[start:start + 16]))
    hook.remove()
    head = LogisticRegression(max_iter=2000).fit(torch.cat(features).numpy(), y_fit)
    with torch.no_grad():
        dense.weight.zero_()
        dense.bias.fill_(-30.0)  # the 990 classes the head was not fitted for never win
        dense.weight[:10] = torch.from_numpy(head.coef_.astype(np.float32))
        dense.bias[:10] = torch.from_numpy(head.intercept_.astype(np.float32))
    path = work / "resnet18_fitted.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def resnet18(work: Path, weights: Path | None) -> Case:
    spec = ROOT / "specs/resnet18.spec"
    x, y = digits(3, 224, 640)  # all 1,797 at 3x224x224 would take 1.1 GB
    x_cal, x_held, y_held = x[:128], x[512:], y[512:]
    if weights is None:
        weights = fit_resnet(work, x_cal, x[128:512], y[128:512])
        note = ("random convolutions; BatchNorm statistics from the 128 calibration images; dense layer fitted "
                "on the features of digits 128-511")
    else:
        note = f"weights from {weights}"
    export_at = exporter(spec, weights, work)
    return Case("ResNet-18", export_at(17), "input", x_cal, x_held, y_held, STATIC_CONFIGS, REFERENCE, export_at,
                [note, "inputs: digits adapted to 3x224x224; calibration: digits 0-127; held out: digits 512-639"])


def spam_sequences(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random tokens; in spam (label 1) a quarter of them come from tokens 1-20, in ham 1%."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, count)
    x = rng.integers(1, 1000, (count, 150))
    spammy = rng.random((count, 150)) < np.where(y[:, None] == 1, 0.25, 0.01)
    x[spammy] = rng.integers(1, 21, int(spammy.sum()))
    return x.astype(np.int64), y.astype(np.int64)


def spam_lstm(work: Path) -> Case:
    spec = ROOT / "specs/spam_lstm.spec"
    x, y = spam_sequences(2000, 0)
    np.savez(work / "spam.npz", x=x, y=y)
    spec_compiler.load(spec).train(epochs=3, data=str(work / "spam.npz"), out=str(work / "spam_run"), progress=False)
    export_at = exporter(spec, work / "spam_run", work)
    x_cal, _ = spam_sequences(256, 1)
    x_held, y_held = spam_sequences(1024, 2)
    return Case("LSTM spam classifier", export_at(17), "input", x_cal, x_held, y_held, DYNAMIC_CONFIGS,
                DYNAMIC_CONFIGS[0], export_at,
                ["trained 3 epochs on 2,000 synthetic sequences; calibration: 256 fresh ones; held out: 1,024 more"])


class Reader:
    """onnxruntime's CalibrationDataReader over an array, 16 inputs a batch."""

    def __init__(self, name: str, x: np.ndarray):
        self.name, self.x = name, x
        self.rewind()

    def get_next(self):
        return next(self.batches, None)

    def rewind(self):
        self.batches = iter([{self.name: self.x[i:i + 16]} for i in range(0, len(self.x), 16)])


def gemm_to_matmul(proto: onnx.ModelProto) -> None:
    """Dense layers (Gemm with a constant weight) as MatMul + Add: the dynamic quantizer handles MatMul only."""
    weights = {init.name: init for init in proto.graph.initializer}
    nodes = []
    for node in proto.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or node.input[1] not in weights or attrs.get("transA", 0) or \
                attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weights[node.input[1]])
        w = np.ascontiguousarray(w.T if attrs.get("transB", 0) else w)
        proto.graph.initializer.append(numpy_helper.from_array(w, node.input[1] + "_matmul"))
        product = node.output[0] + "_matmul"
        nodes.append(helper.make_node("MatMul", [node.input[0], node.input[1] + "_matmul"], [product]))
        nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]]))
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


def quantize(case: Case, config: Config, work: Path, tag: str) -> bytes:
    stem = work / tag
    source, prepared, target = stem.with_suffix(".fp32.onnx"), stem.with_suffix(".pre.onnx"), stem.with_suffix(".int8.onnx")
    source.write_bytes(case.export_at(config.opset) if config.opset != 17 else case.fp32)
    if config.preprocess:
        oq.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=case.x_cal.dtype != np.int64)
    else:
        prepared.write_bytes(source.read_bytes())
    proto = onnx.load(str(prepared))
    if config.dynamic:
        gemm_to_matmul(proto)
    keep_float = [n.name for n in proto.graph.node if n.op_type in ("Softmax", "Sigmoid")]
    common = {"per_channel": config.per_channel, "reduce_range": config.reduce_range,
              "weight_type": TYPES[config.weight], "nodes_to_exclude": keep_float,
              "op_types_to_quantize": list(config.op_types) or None,
              "extra_options": {k: list(v) if isinstance(v, tuple) else v for k, v in config.extra}}
    with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print their progress
        if config.dynamic:
            oq.quantize_dynamic(proto, str(target), **common)
        else:
            oq.quantize_static(proto, str(target), Reader(case.input_name, case.x_cal),
                            activation_type=TYPES[config.activation], calibrate_method=METHODS[config.method],
                            quant_format=oq.QuantFormat.QDQ if config.quant_format == "QDQ" else oq.QuantFormat.QOperator,
                            **common)
    return target.read_bytes()


def session(model: bytes, threads: int, level: str = "ALL", entries: tuple = (), optimized_to: Path | None = None):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level, options.log_severity_level = LEVELS[level], 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no stealing from the next session
    for key, value in entries:
        options.add_session_config_entry(key, value)
    if optimized_to is not None:
        options.optimized_model_filepath = str(optimized_to)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def kernels(model: bytes, config: Config, work: Path) -> str:
    """'int8/float' compute nodes in the graph ONNX Runtime runs after its own optimization."""
    path = work / "optimized.onnx"
    session(model, 1, config.level, config.session, optimized_to=path)
    ops = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    return f"{sum(ops[op] for op in INT8_KERNELS)}/{sum(ops[op] for op in FLOAT_KERNELS)}"


def clear_calls(y: np.ndarray) -> np.ndarray:
    """Inputs fp32 decides by a probability margin above CLEAR_MARGIN (specc export's int8 criterion)."""
    y = np.sort(y.reshape(len(y), -1).astype(np.float64), axis=1)
    margin = np.abs(2 * y[:, 0] - 1) if y.shape[1] == 1 else y[:, -1] - y[:, -2]
    return margin > CLEAR_MARGIN


def top_class(y: np.ndarray) -> np.ndarray:
    y = y.reshape(len(y), -1)
    return (y[:, 0] > 0.5).astype(np.int64) if y.shape[1] == 1 else y.argmax(axis=1)


def predict(sess, name: str, x: np.ndarray, batch: int = 32) -> np.ndarray:
    return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def median_call(sess, feed: dict, budget_s: float) -> float:
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < budget_s:
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def sandwiched_ratios(fp32, others: list, feed: dict, rounds: int, budget_s: float) -> tuple[float, list[float]]:
    """Median fp32 seconds per call, and per other session the median over rounds of its time over the
    mean of the fp32 times measured right before and right after it."""
    for sess in [fp32, *others]:
        median_call(sess, feed, 0.0)  # warm-up
    base: list[float] = []
    ratios: list[list[float]] = [[] for _ in others]
    for _ in range(rounds):
        before = median_call(fp32, feed, budget_s)
        base.append(before)
        for i, sess in enumerate(others):
            t = median_call(sess, feed, budget_s)
            after = median_call(fp32, feed, budget_s)
            ratios[i].append(t / ((before + after) / 2))
            base.append(after)
            before = after
    return float(np.median(base)), [float(np.median(r)) for r in ratios]


def compare(case: Case, threads: list[int], batch: int, rounds: int, budget_s: float, opsets: list[int], only: str,
            work: Path) -> dict:
    configs = [c for c in case.configs if only in c.name]
    configs += [replace(case.reference, name=f"{case.reference.name}, opset {o}", opset=o) for o in opsets if o != 17]
    fp32 = session(case.fp32, 2)
    ref_cal, ref_held = predict(fp32, case.input_name, case.x_cal), predict(fp32, case.input_name, case.x_held)
    clear = clear_calls(ref_cal)
    files: dict[Config, bytes] = {}
    rows, ready = [], []
    for config in configs:
        row = {"config": config.name, "settings": asdict(config)}
        rows.append(row)
        try:
            if config.file_key() not in files:
                files[config.file_key()] = quantize(case, config, work, f"config{len(files)}")
            model = files[config.file_key()]
            sess = session(model, 2, config.level, config.session)
            cal, held = predict(sess, case.input_name, case.x_cal), predict(sess, case.input_name, case.x_held)
        except Exception as error:  # noqa: BLE001 - a configuration onnxruntime rejects is a finding, not a crash
            row["error"] = str(error).strip().splitlines()[0][:160]
            continue
        row.update(int8_bytes=len(model), kernels=kernels(model, config, work),
                   agreement_calibration=float(np.mean(top_class(cal) == top_class(ref_cal))),
                   agreement_clear=float(np.mean((top_class(cal) == top_class(ref_cal))[clear])) if clear.any() else None,
                   agreement_held_out=float(np.mean(top_class(held) == top_class(ref_held))),
                   accuracy_int8=float(np.mean(top_class(held) == case.y_held)))
        ready.append((row, model, config))
    feed = {case.input_name: case.x_held[:batch]}
    result = {"model": case.label, "notes": case.notes, "fp32_bytes": len(case.fp32),
              "fp32_ops": dict(collections.Counter(n.op_type for n in onnx.load_from_string(case.fp32).graph.node)),
              "accuracy_fp32": float(np.mean(top_class(ref_held) == case.y_held)), "fp32_ms": {}, "rows": rows,
              "clear_calibration_inputs": int(clear.sum()), "calibration_inputs": len(case.x_cal)}
    for n in threads:
        sessions = [session(model, n, config.level, config.session) for _, model, config in ready]
        fp32_s, ratios = sandwiched_ratios(session(case.fp32, n), sessions, feed, rounds, budget_s)
        result["fp32_ms"][n] = fp32_s * 1e3
        for (row, _, _), ratio in zip(ready, ratios):
            row[f"ratio_{n}t"] = ratio
    qualified = [r for r, _, _ in ready if r["agreement_calibration"] >= MIN_AGREEMENT]
    key = f"ratio_{threads[0]}t"
    fastest = min((r[key] for r in qualified), default=None)
    tied = [r for r in qualified if r[key] <= fastest * TIE]  # closer than the timing noise
    result["winner"] = max(tied, key=lambda r: (r["agreement_calibration"], r["agreement_held_out"], -r[key]),
                           default={}).get("config")
    result["int8_pays"] = fastest is not None and fastest < 1.0
    return result


def render(result: dict, threads: list[int]) -> str:
    ops = ", ".join(f"{op} {k}" for op, k in sorted(result["fp32_ops"].items()))
    fp32_ms = ", ".join(f"{t} thread(s) {ms:.3f} ms" for t, ms in result["fp32_ms"].items())
    legend = (f"  agree cal: top class as fp32 on the {result['calibration_inputs']} calibration inputs; clear: on the "
              f"{result['clear_calibration_inputs']} of them that fp32 decides by a margin above {CLEAR_MARGIN:g}; "
              "held: on the held-out inputs; acc: int8 held-out accuracy; kernels: int8/float compute nodes after "
              "ONNX Runtime's optimization")
    lines = [f"{result['model']}: fp32 {result['fp32_bytes'] / 1e6:.2f} MB, fp32 ops {ops}",
             *(f"  {note}" for note in result["notes"]),
             f"  fp32 latency (median, for scale only): {fp32_ms}; fp32 held-out accuracy {result['accuracy_fp32']:.3f}",
             legend]
    ratio_heads = "".join(f"{f'ratio {t}t':>10}" for t in threads)
    lines.append(f"  {'configuration':<58}{ratio_heads}{'kernels':>9}{'agree cal':>10}{'clear':>7}{'held':>7}{'acc':>7}")
    for row in result["rows"]:
        if "error" in row:
            lines.append(f"  {row['config']:<58}  FAILED: {row['error']}")
            continue
        ratios = "".join(f"{row[f'ratio_{t}t']:>9.2f}x" for t in threads)
        clear = "n/a" if row["agreement_clear"] is None else f"{row['agreement_clear']:.3f}"
        lines.append(f"  {row['config']:<58}{ratios}{row['kernels']:>9}{row['agreement_calibration']:>10.3f}"
                     f"{clear:>7}{row['agreement_held_out']:>7.3f}{row['accuracy_int8']:>7.3f}")
    if not result["rows"]:
        lines.append("  no configuration selected (--only)")
    elif result["winner"] is None:
        lines.append(f"  no configuration reaches {MIN_AGREEMENT:.0%} agreement on the calibration inputs: keep fp32")
    elif not result["int8_pays"]:
        lines.append(f"  int8 is NOT faster than fp32 in any configuration with {MIN_AGREEMENT:.0%} agreement: keep fp32")
    else:
        lines.append(f"  winner ({threads[0]} thread(s), agreement >= {MIN_AGREEMENT:.0%} on calibration inputs): "
                     f"{result['winner']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet18,spam_lstm")
    parser.add_argument("--threads", default="1,2", help="intra-op thread counts; the first one picks the winner")
    parser.add_argument("--batch", type=int, default=1, help="batch size of the timed calls")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.15, help="seconds of calls per timing sample")
    parser.add_argument("--opsets", default="13,18,21", help="also export at these opsets (reference config)")
    parser.add_argument("--resnet-weights", type=Path, default=None, help="a trained ResNet-18 run folder")
    parser.add_argument("--only", default="", help="only the configurations whose name contains this text")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep its files")
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    opsets = [int(o) for o in args.opsets.split(",") if o]
    torch.set_num_threads(2)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice on every call
    makers = {"lenet5": lenet5, "resnet18": lambda work: resnet18(work, args.resnet_weights), "spam_lstm": spam_lstm}
    print(f"ONNX Runtime {ort.__version__}, onnx {onnx.__version__}, torch {torch.__version__}, "
          f"{platform.machine()}, CPU flags: {', '.join(cpu_flags()) or 'unknown'}\n")
    results = []
    with contextlib.ExitStack() as stack:
        folder = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="specc-int8-bench-")))
        for name in args.models.split(","):
            work = folder / name
            work.mkdir(parents=True, exist_ok=True)
            results.append(compare(makers[name](work), threads, args.batch, args.rounds, args.budget, opsets, args.only,
                                   work))
            print(render(results[-1], threads) + "\n", flush=True)
    if args.json_out:
        write_text_atomic(args.json_out, json.dumps({"onnxruntime": ort.__version__, "threads": threads,
                                                     "cpu_flags": cpu_flags(), "results": results}, indent=2))


def cpu_flags() -> list[str]:
    """The flags that decide which int8 kernels MLAS can use (VNNI, AMX)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if "vnni" in f or f.startswith("amx") or f in ("avx512f", "avx2"))


if __name__ == "__main__":
    main()

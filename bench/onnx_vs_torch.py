"""ONNX Runtime against PyTorch eager, on the exported LeNet-5 and LSTM spam classifier.

    python bench/onnx_vs_torch.py [--threads N] [--rounds 7] [--int8] [--json OUT.json]

For each model (specs/lenet5.spec, specs/spam_lstm.spec, freshly initialized: speed does
not depend on the weights' values) it measures:

- export time: `Model.export` end to end (build, export, onnx.checker, parity check at two
  batch sizes, atomic write) and the exporter call alone;
- batch-1 latency: median of many single-sample calls, torch (eval, no_grad) and ONNX
  Runtime (CPU provider) in alternating rounds so that both see the same machine state;
- batch-256 throughput: samples per second, measured the same way.
- with --int8: the int8 file `specc export --quantize int8` writes, as a third column.

Both runtimes use the same number of threads (--threads, default 1: on a shared or small
machine, multi-threaded eager PyTorch at batch 1 mostly measures OpenMP waiting for busy
cores). ONNX Runtime's thread pool is told not to spin between calls, so that in the
alternating rounds it does not steal the cores torch is about to use.
Ratios are torch's time over ONNX Runtime's (above 1: ONNX Runtime is faster).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import interleaved, median, per_call  # noqa: E402

import spec_compiler  # noqa: E402
from spec_compiler.export.prepare import prepare, sample_input  # noqa: E402

MODELS = {"LeNet-5": "specs/lenet5.spec", "LSTM spam classifier": "specs/spam_lstm.spec"}


def interleaved_latency(runners: dict, rounds: int, budget_s: float) -> dict[str, float]:
    """Median seconds per call of each runner, measured in alternating rounds."""
    measured = interleaved({name: (lambda fn=fn: per_call(fn, budget_s)) for name, fn in runners.items()},
                           rounds, warmup=1)
    return {name: median(values) for name, values in measured.items()}


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def bench_model(label: str, spec: str, folder: Path, threads: int, rounds: int, int8: bool) -> dict:
    model = spec_compiler.load(ROOT / spec)
    out = folder / f"{Path(spec).stem}.onnx"
    start = time.perf_counter()
    report = model.export(out)
    export_total = time.perf_counter() - start
    row = {"model": label, "spec": spec, "params": model.summary().get("total_params"),
           "export_total_s": export_total, "exporter_s": report.export_seconds, "onnx_bytes": report.size_bytes,
           "parity_max_abs_diff": report.max_abs_diff}
    p = prepare(model)  # the same module torch runs: normalization wrapper (none here) + model, eval mode
    module = p.wrapper.eval()
    sessions = {"onnxruntime": session(out, threads)}
    if int8:
        out8 = folder / f"{Path(spec).stem}.int8.onnx"
        model.export(out8, quantize="int8")
        sessions["onnxruntime int8"] = session(out8, threads)
        row["int8_bytes"] = out8.stat().st_size
    rng = np.random.default_rng(0)
    for batch, key in ((1, "batch1"), (256, "batch256")):
        x = sample_input(p, batch, None, rng)
        xt = torch.from_numpy(x)

        def run_torch():
            with torch.no_grad():
                module(xt)

        runners = {"torch": run_torch}
        for name, s in sessions.items():
            runners[name] = (lambda s=s: s.run(None, {p.input_name: x}))
        seconds = interleaved_latency(runners, rounds, budget_s=0.15 if batch == 1 else 0.4)
        for name, value in seconds.items():
            if batch == 1:
                row[f"{key}_{name}_ms"] = value * 1e3
            else:
                row[f"{key}_{name}_samples_per_s"] = batch / value
        row[f"{key}_torch_over_ort"] = seconds["torch"] / seconds["onnxruntime"]
        if int8:
            row[f"{key}_int8_over_fp32_ort"] = seconds["onnxruntime int8"] / seconds["onnxruntime"]
    return row


def render(rows: list[dict], threads: int, int8: bool) -> str:
    lines = [f"ONNX Runtime {ort.__version__} vs PyTorch {torch.__version__} eager, CPU, {threads} thread(s), "
             f"{platform.processor() or platform.machine()}", ""]
    for r in rows:
        lines.append(f"{r['model']} ({r['spec']}, {r['params']:,} params, {r['onnx_bytes'] / 1e3:.0f} kB ONNX)")
        lines.append(f"  export: {r['export_total_s']:.2f} s end to end (exporter {r['exporter_s']:.2f} s), "
                     f"parity max abs diff {r['parity_max_abs_diff']:.1e}")
        line = (f"  batch 1 latency:     torch {r['batch1_torch_ms']:.3f} ms   onnxruntime "
                f"{r['batch1_onnxruntime_ms']:.3f} ms   ratio torch/ort {r['batch1_torch_over_ort']:.2f}x")
        if int8:
            line += (f"   int8 {r['batch1_onnxruntime int8_ms']:.3f} ms "
                     f"({r['batch1_int8_over_fp32_ort']:.2f}x fp32 ort{', SLOWER' if r['batch1_int8_over_fp32_ort'] > 1 else ''})")
        lines.append(line)
        line = (f"  batch 256 throughput: torch {r['batch256_torch_samples_per_s']:,.0f}/s   onnxruntime "
                f"{r['batch256_onnxruntime_samples_per_s']:,.0f}/s   ratio ort/torch {r['batch256_torch_over_ort']:.2f}x")
        if int8:
            line += (f"   int8 {r['batch256_onnxruntime int8_samples_per_s']:,.0f}/s "
                     f"(time {r['batch256_int8_over_fp32_ort']:.2f}x fp32 ort"
                     f"{', SLOWER' if r['batch256_int8_over_fp32_ort'] > 1 else ''})")
        lines.append(line)
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--int8", action="store_true", help="also time the int8 files")
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="specc-bench-") as folder:
        rows = [bench_model(label, spec, Path(folder), args.threads, args.rounds, args.int8)
                for label, spec in MODELS.items()]
    print(render(rows, args.threads, args.int8))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"threads": args.threads, "torch": torch.__version__,
                                                   "onnxruntime": ort.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

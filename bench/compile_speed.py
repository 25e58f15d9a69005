"""Compile-speed benchmark: specc against torchinfo, on LeNet-5 and a 1,000-layer spec.

    python bench/compile_speed.py [--repeats N] [--json OUT.json]

For each model it times, as the best of N runs:

- whole process: `specc compile FILE` as a subprocess (interpreter start, imports,
  parse, check, table), against a subprocess that imports torch and torchinfo, builds
  the same model by hand as an nn.Module and prints torchinfo.summary of it;
- in process: `spec_compiler.load(FILE)` plus the table, against building the nn.Module
  and calling torchinfo.summary (torch already imported).

Ratios are torchinfo's time over specc's (above 1: specc is faster). The two tools do
different work to get the same table: specc reasons about shapes symbolically; torchinfo
runs a real forward pass with hooks. Both report the same parameter totals (checked).
Needs the `bench` extra (torchinfo): pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from timing import best_of

ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.spec"
DEEP_BLOCKS = 250  # x 4 layers = 1,000 layers, then a 2-layer head


def deep_spec_text() -> str:
    """A 1,000-layer spec written out line by line (no repeat), so the parser sees it all."""
    lines = ["# generated: 250 x (conv, batchnorm, relu, dropout) = 1,000 layers, then a 2-layer head",
             "model deep1000", "input image 16x32x32"]
    for _ in range(DEEP_BLOCKS):
        lines += ["conv 16 3x3 pad=same bias=false", "batchnorm", "relu", "dropout 0.1"]
    lines += ["global_avgpool", "dense 10 softmax"]
    return "\n".join(lines) + "\n"


# The same models, hand-built in PyTorch (what a user would write for torchinfo).
TORCH_MODELS = textwrap.dedent(f"""
    import torch
    from torch import nn

    def lenet5():
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10), nn.Softmax(dim=1),
        ), (1, 1, 32, 32)

    def deep1000():
        layers = []
        for _ in range({DEEP_BLOCKS}):
            layers += [nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.1)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10), nn.Softmax(dim=1)]
        return nn.Sequential(*layers), (1, 16, 32, 32)
""")

TORCHINFO_PROCESS = TORCH_MODELS + textwrap.dedent("""
    import sys
    import torchinfo
    model, size = {"lenet5": lenet5, "deep1000": deep1000}[sys.argv[1]]()
    print(torchinfo.summary(model, input_size=size, verbose=0))
""")


def specc_command() -> list[str]:
    script = Path(sys.executable).with_name("specc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "spec_compiler.cli"]


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout


def _torchinfo_total(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("Total params:"))
    return int(line.split(":")[1].strip().replace(",", ""))


def bench(repeats: int) -> dict:
    import spec_compiler

    namespace: dict = {}
    exec(TORCH_MODELS, namespace)  # noqa: S102 - our own constant source
    import torch  # noqa: F401  (imported once, outside the in-process timings)
    import torchinfo

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        deep = Path(folder) / "deep1000.spec"
        deep.write_text(deep_spec_text(), encoding="utf-8")
        torchinfo_script = Path(folder) / "torchinfo_summary.py"
        torchinfo_script.write_text(TORCHINFO_PROCESS, encoding="utf-8")
        for name, path in (("lenet5", LENET), ("deep1000", deep)):
            model = spec_compiler.load(path)
            specc_total = model.summary()["total_params"]
            layers = len(model.summary()["layers"])
            torch_model, size = namespace[name]()
            torchinfo_total = torchinfo.summary(torch_model, input_size=size, verbose=0).total_params
            # torchinfo counts BatchNorm's running statistics as neither; specc counts them
            # as non-trainable (Keras' convention), so compare trainable parameters
            specc_trainable = model.summary()["trainable_params"]
            assert specc_trainable == torchinfo_total, (name, specc_trainable, torchinfo_total)

            specc_process = best_of(lambda: _run([*specc_command(), "compile", str(path)]), repeats)
            torchinfo_process = best_of(lambda: _run([sys.executable, str(torchinfo_script), name]), repeats)
            specc_inproc = best_of(lambda: spec_compiler.load(path).table(), repeats * 4)

            def torchinfo_once():
                built, input_size = namespace[name]()
                torchinfo.summary(built, input_size=input_size, verbose=0)

            torchinfo_inproc = best_of(torchinfo_once, repeats * 4)
            results[name] = {
                "layers": layers,
                "params": specc_total,
                "trainable_params": specc_trainable,
                "whole_process_s": {"specc": specc_process, "torchinfo": torchinfo_process,
                                    "ratio": torchinfo_process / specc_process},
                "in_process_s": {"specc": specc_inproc, "torchinfo": torchinfo_inproc,
                                 "ratio": torchinfo_inproc / specc_inproc},
            }
    return results


def report(results: dict) -> str:
    lines = [
        f"{'model':<10} {'layers':>6}  {'measure':<14} {'specc':>10} {'torchinfo':>10} {'ratio':>8}",
        "-" * 64,
    ]
    for name, r in results.items():
        for label, key in (("whole process", "whole_process_s"), ("in process", "in_process_s")):
            t = r[key]
            lines.append(f"{name:<10} {r['layers']:>6}  {label:<14} {t['specc'] * 1000:>8.1f}ms "
                         f"{t['torchinfo'] * 1000:>8.1f}ms {t['ratio']:>7.1f}x")
    lines.append("ratio = torchinfo time / specc time (best of the repeats); above 1 means specc is faster")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement (the best is kept)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    results = bench(args.repeats)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(),
                                         "statistic": "best of repeats", "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

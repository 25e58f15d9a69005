"""Training memory does not grow with the data: a 2 GB uint8 x.npy (N, 3, 32, 32) with its
y.npy, one run of `--max-steps 50` of a small convnet, and the training process's peak RSS.

The data are written to a temporary folder (deleted afterwards); training runs in a fresh
process that reports its own peak resident memory (VmHWM from /proc/self/status, which is
per address space, unlike ru_maxrss that Linux carries over exec), and the largest peak of
its DataLoader workers (ru_maxrss of its reaped children). The same run on a tiny file of
the same layout gives the baseline (torch, the model, the optimizer). The data are read by
rows with os.preadv (spec_compiler/training/dataset_files.py): the page cache holds the
file, the process does not. A 1% validation split is read the same way, and
`normalize=standard` adds the streaming pass over the training part for the statistics.

    python bench/train_memory.py                    # 2 GiB, 50 steps, batch 32, default workers
    python bench/train_memory.py --gib 0.5 --workers 0 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEC = """model small_convnet
input image 3x32x32
conv 16x3x3 relu -> maxpool 2
conv 32x3x3 relu -> maxpool 2
flatten
dense 10 softmax
"""
SAMPLE_BYTES = 3 * 32 * 32
CHUNK_ROWS = 65_536  # rows written at a time


def write_data(folder: Path, rows: int, seed: int = 0) -> None:
    """x.npy (rows, 3, 32, 32) uint8 and y.npy (rows,) int64, written a chunk at a time."""
    rng = np.random.default_rng(seed)
    with open(folder / "x.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (rows, 3, 32, 32)})
        for start in range(0, rows, CHUNK_ROWS):
            handle.write(rng.integers(0, 256, (min(CHUNK_ROWS, rows - start), SAMPLE_BYTES), dtype=np.uint8).tobytes())
    np.save(folder / "y.npy", rng.integers(0, 10, rows, dtype=np.int64))


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def train_once(folder: str, steps: int, batch: int, workers: int | None, normalize: bool, split: float) -> None:
    """The measured process: train, then print its figures as one JSON line."""
    import spec_compiler

    spec = Path(folder) / "small_convnet.spec"
    spec.write_text(SPEC)
    started = time.perf_counter()
    result = spec_compiler.load(spec).train(
        data=folder, max_steps=steps, batch=batch, workers=workers, validation_split=split, progress=False,
        normalize="standard" if normalize else None, out=str(Path(folder) / "run"), device="cpu")
    record = json.loads((Path(folder) / "run" / "run.json").read_text())
    print(json.dumps({"peak_rss_mib": round(peak_rss_mib(), 1),
                      "workers_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
                      "workers": record["workers"], "steps": steps, "epochs_run": result.epochs_run,
                      "val_loss": result.metrics.get("val_loss"), "seconds": round(time.perf_counter() - started, 1)}))


def measure(rows: int, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="specc-memory-") as folder:
        write_data(Path(folder), rows)
        command = [sys.executable, __file__, "--run", folder, "--steps", str(args.steps), "--batch", str(args.batch),
                   "--validation-split", str(args.validation_split)]
        command += ["--workers", str(args.workers)] if args.workers is not None else []
        command += [] if args.no_normalize else ["--normalize"]
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    return {"file_mib": round(rows * SAMPLE_BYTES / 2**20, 1), **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=2.0, help="size of x.npy in GiB")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: specc's choice)")
    parser.add_argument("--validation-split", type=float, default=0.01)
    parser.add_argument("--no-normalize", action="store_true", help="skip the streaming normalization pass")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--normalize", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        train_once(args.run, args.steps, args.batch, args.workers, args.normalize, args.validation_split)
        return
    baseline = measure(4096, args)
    large = measure(int(args.gib * 2**30) // SAMPLE_BYTES, args)
    print(f"baseline: x.npy of {baseline['file_mib']:.0f} MiB: peak RSS {baseline['peak_rss_mib']:.0f} MiB "
          f"(workers' peak {baseline['workers_peak_rss_mib']:.0f} MiB, {baseline['workers']} workers)")
    print(f"large:    x.npy of {large['file_mib']:.0f} MiB: peak RSS {large['peak_rss_mib']:.0f} MiB "
          f"(workers' peak {large['workers_peak_rss_mib']:.0f} MiB, {large['workers']} workers); "
          f"{large['steps']} steps in {large['seconds']:.0f} s")
    print(f"growth over the baseline: {large['peak_rss_mib'] - baseline['peak_rss_mib']:+.0f} MiB for "
          f"{large['file_mib'] - baseline['file_mib']:.0f} MiB more data; target: peak RSS under 1024 MiB: "
          f"{'met' if large['peak_rss_mib'] < 1024 else 'NOT met'}")
    if args.json:
        print(json.dumps({"baseline": baseline, "large": large}))


if __name__ == "__main__":
    main()

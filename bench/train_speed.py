"""Training throughput: `specc train` (the trainer behind it) vs a hand-written PyTorch loop.

Same model (LeNet-5 from specs/lenet5.spec, built by specc for both), same data (the
bundled digits adapted to 1x32x32, all 1,797 samples, no validation), same batch size,
optimizer (Adam, lr 1e-3), loss (cross-entropy on the logits) and thread count. The
rounds are interleaved (specc, hand, specc, hand, ...) so a busy machine slows both
alike. Throughput is samples per second of each epoch after the first (the first warms
up), timed from one epoch's end to the next: for specc with a callback called after
all of its per-epoch work (metrics, checkpoint.pt, metrics.csv); for the hand loop
around its loop. Wall-clock and CPU time (time.process_time, one thread) are both
reported: on a busy machine CPU time is the steadier figure. Both the median and the best
epoch rate are reported (on a busy machine the best epoch is the least disturbed).
Peak memory: each side runs once more in its own subprocess and reports its peak RSS
(VmHWM from /proc/self/status).

    python bench/train_speed.py                      # 5 rounds of 4 epochs (epochs 2-4 timed), 1 thread
    python bench/train_speed.py --rounds 5 --epochs 4 --threads 2 --batch 64
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "lenet5.spec"
SAMPLES = 1797  # the digits, all of them (no validation split)


def digits_tensors(model):
    from spec_compiler.training import data as data_mod

    target = data_mod.Target.of(model)
    raw = data_mod.load_digits()
    x, _ = data_mod.adapt_inputs(raw, target)
    y, _ = data_mod.adapt_labels(raw, target, "sparse_categorical_crossentropy", None)
    return x, y


class _EpochClock:
    """A specc callback: wall and CPU time at the end of every epoch (after all of
    the trainer's per-epoch work: metrics, checkpoint, metrics.csv)."""

    def __init__(self):
        self.marks: list[tuple[float, float]] = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.marks.append((time.perf_counter(), time.process_time()))


def _intervals(marks: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]


def run_specc(epochs: int, batch: int, threads: int, seed: int) -> list[tuple[float, float]]:
    """(wall, cpu) seconds of epochs 2..N (epoch 1 warms up)."""
    import spec_compiler

    model = spec_compiler.load(SPEC)
    clock = _EpochClock()
    with tempfile.TemporaryDirectory() as out:
        model.train(epochs=epochs, batch=batch, validation_split=0.0, seed=seed, threads=threads,
                    progress=False, out=out, device="cpu", callbacks=[clock])
    return _intervals(clock.marks)


def run_hand(epochs: int, batch: int, threads: int, seed: int) -> list[tuple[float, float]]:
    import torch
    import torch.nn.functional as F

    import spec_compiler

    torch.set_num_threads(threads)
    model = spec_compiler.load(SPEC)
    x, y = digits_tensors(model)
    net = model.build(seed=seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    n = len(x)
    marks = []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        total_loss = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for i in range(0, n, batch):
            index = order[i:i + batch]
            xb, yb = x.index_select(0, index), y.index_select(0, index)
            logits = net.forward_logits(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                total_loss += loss.detach() * len(index)
                correct += (logits.argmax(1) == yb).sum()
        print(f"epoch {epoch + 1}: loss {float(total_loss) / n:.4f} accuracy {int(correct) / n:.4f}", file=sys.stderr)
        marks.append((time.perf_counter(), time.process_time()))
    return _intervals(marks)


def peak_rss_self_mib() -> float:
    """This process's peak resident memory. VmHWM (per address space) rather than
    ru_maxrss, which Linux carries over exec from the forking parent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mib(mode: str, epochs: int, batch: int, threads: int, seed: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--mode", mode, "--epochs", str(epochs), "--batch", str(batch),
                          "--threads", str(threads), "--seed", str(seed)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=["both", "specc", "hand"], default="both", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    runners = {"specc": run_specc, "hand": run_hand}
    if args.mode != "both":
        runners[args.mode](args.epochs, args.batch, args.threads, args.seed)
        print(json.dumps({"peak_rss_mib": round(peak_rss_self_mib(), 1)}))
        return
    for name in ("specc", "hand"):  # warm-up, not counted (first allocations, lazy initialization)
        runners[name](2, args.batch, args.threads, args.seed)
    wall: dict[str, list[float]] = {"specc": [], "hand": []}  # samples/s of every measured epoch
    cpu: dict[str, list[float]] = {"specc": [], "hand": []}  # samples per CPU-second
    for round_ in range(args.rounds):
        this = {}
        for name in ("specc", "hand") if round_ % 2 == 0 else ("hand", "specc"):
            epochs = runners[name](args.epochs, args.batch, args.threads, args.seed)
            wall[name].extend(SAMPLES / w for w, _ in epochs)
            cpu[name].extend(SAMPLES / c for _, c in epochs)
            this[name] = SAMPLES * len(epochs) / sum(w for w, _ in epochs)
        print(f"round {round_ + 1}: specc {this['specc']:,.0f} samples/s, hand {this['hand']:,.0f} "
              f"samples/s, ratio {this['specc'] / this['hand']:.3f}", flush=True)
    specc, hand = statistics.median(wall["specc"]), statistics.median(wall["hand"])
    best_specc, best_hand = max(wall["specc"]), max(wall["hand"])
    cpu_specc, cpu_hand = statistics.median(cpu["specc"]), statistics.median(cpu["hand"])
    rss_specc = peak_rss_mib("specc", args.epochs, args.batch, args.threads, args.seed)
    rss_hand = peak_rss_mib("hand", args.epochs, args.batch, args.threads, args.seed)
    figures = {"model": "lenet5", "data": "digits 1797x1x32x32", "batch": args.batch, "threads": args.threads,
               "epochs_per_round": args.epochs, "rounds": args.rounds,
               "specc_samples_per_s": round(specc, 1), "hand_samples_per_s": round(hand, 1),
               "throughput_ratio": round(specc / hand, 3),
               "specc_best_epoch_samples_per_s": round(best_specc, 1),
               "hand_best_epoch_samples_per_s": round(best_hand, 1),
               "best_epoch_ratio": round(best_specc / best_hand, 3),
               "specc_samples_per_cpu_s": round(cpu_specc, 1), "hand_samples_per_cpu_s": round(cpu_hand, 1),
               "cpu_time_ratio": round(cpu_specc / cpu_hand, 3),
               "specc_peak_rss_mib": rss_specc, "hand_peak_rss_mib": rss_hand,
               "peak_memory_ratio": round(rss_specc / rss_hand, 3)}
    print(f"median epoch: specc {specc:,.0f} samples/s, hand-written loop {hand:,.0f} samples/s, "
          f"ratio {specc / hand:.3f} (target >= 0.95)")
    print(f"best epoch:   specc {best_specc:,.0f} samples/s, hand-written loop {best_hand:,.0f} samples/s, "
          f"ratio {best_specc / best_hand:.3f}")
    print(f"per CPU-second (median): specc {cpu_specc:,.0f}, hand-written loop {cpu_hand:,.0f}, "
          f"ratio {cpu_specc / cpu_hand:.3f} (CPU time is less disturbed by other processes)")
    print(f"peak RSS: specc {rss_specc:.0f} MiB, hand-written loop {rss_hand:.0f} MiB, ratio {rss_specc / rss_hand:.3f}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

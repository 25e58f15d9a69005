"""Training throughput, side by side: specc's trainer against a hand-written PyTorch loop.

1. Data paths (LeNet-5, specs/lenet5.spec, on the bundled digits adapted to 1x32x32, all
   1,797 samples; specc in channels_last, as it trains convnets): specc with the data in
   memory (batches read in the training process, `--workers 0`, the default for data that
   fit in memory), specc with the data read by one DataLoader worker (`--workers 1`), and the
   hand-written loop. Target: in memory at least 0.95 of the hand loop's throughput.
2. `--compile` (with --compile): LeNet-5 and specs/spam_lstm.spec (synthetic token ids,
   512 samples of 150 tokens), each as specc eager, specc `--compile` (torch.compile,
   inductor) and the eager hand-written loop, each run in a process of its own (as a user
   trains: one run per process, nothing compiled by another side in it; the speed of a
   process also moves by 10-25% from one to the next here, which the rounds average out).
   The steady state is the compiled steps alone: specc compiles before the first step and
   reports that time apart (run.json's compile_s, printed here; a first compile is cold,
   later ones, in any process, hit inductor's caches).
   Target: specc --compile at least 1.25x the eager hand loop. Two more sides measure bf16
   autocast on the CPU (`--amp bf16`, eager and with --compile): it changes the numerics,
   so it is the user's choice, never implied by --compile. A last line per model gives the
   share of the hand loop's CPU time in oneDNN's convolution and LSTM kernels (torch.profiler),
   which inductor calls unchanged, and so the most --compile can gain (Amdahl; the profiler's
   own cost falls on the other ops, so the share is if anything low and the bound high).
3. channels_last on the CPU: the hand loop with the model and its inputs in channels_last
   against the default layout (LeNet-5): specc trains convnets in channels_last on the CPU
   too (spec_compiler/training/compiling.py), which this checks.

Every side uses the same model (built by specc), data, batch size, optimizer (Adam, lr 1e-3,
eps 1e-7; specc builds torch's fused Adam, the hand loop the default one, as a user writes
it), loss on the logits, thread count and no validation. Each side trains a few epochs per
round; its figure for a round is the median time of its epochs after the first (the first
warms up), taken for specc by a Callback at each epoch's end (so specc's time includes its
per-epoch work: metrics, checkpoint.pt, metrics.csv). Rounds interleave the sides
(bench/timing.py: interleaved) and each ratio is the median of per-round ratios
(timing.paired_ratio), so drift in machine load hits all sides alike. Wall-clock and CPU
time (time.process_time) are both reported: on a busy machine CPU time is the steadier
figure (the DataLoader side has no CPU figure: its reading runs in another process).

    python bench/train_speed.py                      # 5 rounds of 4 epochs, 1 thread, batch 32
    python bench/train_speed.py --compile --rounds 3 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import interleaved, median, paired_ratio  # noqa: E402

import spec_compiler  # noqa: E402
from spec_compiler.training import Callback  # noqa: E402
from spec_compiler.training import data as data_mod  # noqa: E402

LENET = ROOT / "specs" / "lenet5.spec"
LSTM = ROOT / "specs" / "spam_lstm.spec"
LSTM_SAMPLES = 512


def mark() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class EpochClock(Callback):
    """Wall and CPU time at the end of each epoch, after all of the trainer's per-epoch work."""

    def __init__(self):
        self.marks: list[tuple[float, float]] = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.marks.append(mark())


def steady_epoch_s(marks: list[tuple[float, float]]) -> tuple[float, float]:
    """(wall, CPU) seconds of the median epoch after the first: the steady state."""
    return tuple(statistics.median(b[i] - a[i] for a, b in zip(marks, marks[1:])) for i in (0, 1))


class Workload:
    """A model and its data, for specc (a spec and a --data path) and for the hand loop (tensors)."""

    def __init__(self, name: str, spec: Path, data: str | None, x: torch.Tensor, y: torch.Tensor, binary: bool):
        self.name, self.spec, self.data, self.x, self.y, self.binary = name, spec, data, x, y, binary

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, y) if self.binary else F.cross_entropy(logits, y)

    def correct(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """How many predictions are right (specc logs accuracy for classifiers too)."""
        return ((logits > 0).float() == y).sum() if self.binary else (logits.argmax(1) == y).sum()


def lenet_digits() -> Workload:
    model = spec_compiler.load(LENET)
    target = data_mod.Target.of(model)
    raw = data_mod.load_digits()
    x, _ = data_mod.adapt_inputs(raw, target)
    y, _ = data_mod.adapt_labels(raw, target, "sparse_categorical_crossentropy", None)
    return Workload("lenet5", LENET, None, x, y, binary=False)


def lstm_tokens(folder: Path) -> Workload:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1000, (LSTM_SAMPLES, 150), dtype=np.int64)
    y = (x[:, -1] % 2).astype(np.float32)
    np.savez(folder / "tokens.npz", x=x, y=y)
    return Workload("spam_lstm", LSTM, str(folder / "tokens.npz"), torch.from_numpy(x),
                    torch.from_numpy(y).reshape(-1, 1), binary=True)


def specc_runner(work: Workload, args, compile_times: list[float] | None = None, **options):
    """One specc training run per call; returns its steady epoch seconds."""
    model = spec_compiler.load(work.spec)

    def run() -> float:
        clock = EpochClock()
        with tempfile.TemporaryDirectory() as out:
            model.train(data=work.data, epochs=args.epochs, batch=args.batch, validation_split=0.0, seed=0,
                        threads=args.threads, optimizer="adam(eps=1e-7)", lr=1e-3, progress=False, out=out,
                        device="cpu", callbacks=[clock], **options)
            if compile_times is not None:
                compile_times.append(json.loads((Path(out) / "run.json").read_text())["compile_s"])
        return steady_epoch_s(clock.marks)

    return run


def hand_runner(work: Workload, args, channels_last: bool = False):
    """The loop a PyTorch user writes: shuffled index_select batches, Adam, the loss on the logits."""
    model = spec_compiler.load(work.spec)

    def run() -> float:
        torch.set_num_threads(args.threads)
        net = model.build(seed=0)
        x = work.x
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        marks = []
        for epoch in range(args.epochs):
            net.train()
            order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
            total, correct = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64)
            for start in range(0, len(x), args.batch):
                index = order[start:start + args.batch]
                xb, yb = x.index_select(0, index), work.y.index_select(0, index)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                logits = net.forward_logits(xb)
                loss = work.loss(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    total += loss.detach() * len(index)
                    correct += work.correct(logits, yb)
            float(total), int(correct)  # what a loop that logs its loss and accuracy reads each epoch
            marks.append(mark())
        return steady_epoch_s(marks)

    return run


class Timed:
    """Interleaved (wall, CPU) seconds per round of each side: samples/s and ratios by both clocks."""

    def __init__(self, samples: int, times: dict[str, list[tuple[float, float]]]):
        self.samples = samples
        self.wall = {name: [t[0] for t in values] for name, values in times.items()}
        self.cpu = {name: [t[1] for t in values] for name, values in times.items()}

    def rate(self, name: str, clock: str = "wall") -> float:
        return self.samples / median(getattr(self, clock)[name])

    def ratio(self, name: str, baseline: str, clock: str = "wall") -> float:
        """How many times faster `name` is than `baseline` (median of per-round ratios)."""
        times = getattr(self, clock)
        return paired_ratio(times[baseline], times[name])

    def line(self, label: str, name: str, baseline: str | None = None, cpu: bool = True) -> str:
        text = f"  {label:<28}{self.rate(name):>8,.0f} samples/s"
        text += f"   {self.rate(name, 'cpu'):>8,.0f} per CPU-s" if cpu else f"   {'(2 processes)':>19}"
        if baseline is not None:
            text += f"   {self.ratio(name, baseline):.3f}x" + (f" ({self.ratio(name, baseline, 'cpu'):.3f}x by CPU time)"
                                                                if cpu else "")
        return text

    def figures(self) -> dict:
        return {name: {"samples_per_s": round(self.rate(name), 1), "samples_per_cpu_s": round(self.rate(name, "cpu"), 1)}
                for name in self.wall}


def data_paths(args) -> dict:
    work = lenet_digits()
    timed = Timed(len(work.x), interleaved({"hand": hand_runner(work, args),
                                            "memory": specc_runner(work, args, workers=0),
                                            "worker": specc_runner(work, args, workers=1)}, args.rounds))
    print(f"LeNet-5 on the digits ({timed.samples} samples), batch {args.batch}, {args.threads} thread(s), "
          f"{args.rounds} rounds x {args.epochs} epochs; steady epochs; ratios to the hand loop (target >= 0.95)")
    print(timed.line("hand-written loop", "hand"))
    print(timed.line("specc, data in memory", "memory", "hand"))
    print(timed.line("specc, 1 DataLoader worker", "worker", "hand", cpu=False))
    return {**timed.figures(), "memory_vs_hand": round(timed.ratio("memory", "hand"), 3),
            "memory_vs_hand_cpu": round(timed.ratio("memory", "hand", "cpu"), 3),
            "worker_vs_hand": round(timed.ratio("worker", "hand"), 3)}


SIDES = {"hand": {}, "eager": {}, "compiled": {"compile": True}, "bf16": {"amp": "bf16"},
         "compiled_bf16": {"compile": True, "amp": "bf16"}}


def workload(name: str, folder: Path) -> Workload:
    return lenet_digits() if name == "lenet5" else lstm_tokens(folder)


def one_side(args) -> None:
    """`--side SIDE --model NAME`: one run of one side in this fresh process; prints its
    steady epoch's (wall, CPU) seconds and compile time as JSON."""
    work = workload(args.model, Path(args.folder))
    compile_times: list[float] = []
    run = hand_runner(work, args) if args.side == "hand" else specc_runner(work, args, compile_times,
                                                                            **SIDES[args.side])
    wall, cpu = run()
    print(json.dumps({"wall": wall, "cpu": cpu, "compile_s": compile_times[0] if compile_times else None}))


def side_process(args, name: str, side: str, folder: Path, compile_times: list[float]):
    """A runner that measures `side` in a process of its own: as a user runs one training per
    process, with nothing compiled by another side in it."""
    command = [sys.executable, __file__, "--side", side, "--model", name, "--folder", str(folder),
               "--epochs", str(args.epochs), "--batch", str(args.batch), "--threads", str(args.threads)]

    def run() -> tuple[float, float]:
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        if side == "compiled":
            compile_times.append(result["compile_s"])
        return result["wall"], result["cpu"]

    return run


def compiled(args, folder: Path) -> dict:
    results = {}
    for name in ("lenet5", "spam_lstm"):
        if args.only and name != args.only:
            continue
        work = workload(name, folder)
        compile_times: list[float] = []
        timed = Timed(len(work.x), interleaved({side: side_process(args, name, side, folder, compile_times)
                                                for side in SIDES}, args.rounds, warmup=0))
        print(f"{work.name} --compile ({timed.samples} samples, batch {args.batch}, {args.threads} thread(s), "
              f"{args.rounds} rounds x {args.epochs} epochs, each run a process of its own; steady epochs, the "
              "compile apart; ratios to the eager hand loop, target >= 1.25x)")
        print(timed.line("hand-written loop (eager)", "hand"))
        print(timed.line("specc eager", "eager", "hand"))
        print(timed.line("specc --compile", "compiled", "hand"))
        print(timed.line("specc --amp bf16", "bf16", "hand"))
        print(timed.line("specc --compile --amp bf16", "compiled_bf16", "hand"))
        print(f"  compile time (run.json compile_s): {', '.join(f'{t:.1f}' for t in compile_times)} s "
              "(the first run's is cold unless torch.compile's caches hold the graphs from an earlier one)")
        share, ceiling = kernel_ceiling(work, args)
        print(f"  oneDNN's convolution/LSTM kernels: {share:.0%} of the hand loop's CPU time; torch.compile leaves "
              f"them as they are, so it can gain at most {ceiling:.2f}x (if all else took no time)")
        results[work.name] = {**timed.figures(), "compiled_vs_hand": round(timed.ratio("compiled", "hand"), 3),
                              "compiled_vs_hand_cpu": round(timed.ratio("compiled", "hand", "cpu"), 3),
                              "compiled_vs_eager": round(timed.ratio("compiled", "eager"), 3),
                              "bf16_vs_hand": round(timed.ratio("bf16", "hand"), 3),
                              "compiled_bf16_vs_hand": round(timed.ratio("compiled_bf16", "hand"), 3),
                              "compile_s": compile_times, "onednn_share": round(share, 3),
                              "compile_ceiling": round(ceiling, 3)}
    return results


ONEDNN_KERNELS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::mkldnn_rnn_layer",
                  "aten::mkldnn_rnn_layer_backward")


def kernel_ceiling(work: Workload, args) -> tuple[float, float]:
    """(share, ceiling): the share of the eager hand loop's CPU time spent in oneDNN's
    convolution and LSTM kernels, which torch.compile hands to oneDNN unchanged, and the most
    --compile could gain over that loop if everything else took no time at all (Amdahl)."""
    from torch.profiler import ProfilerActivity, profile

    single = argparse.Namespace(**{**vars(args), "epochs": 2})
    hand_runner(work, single)()  # warm the kernels up
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        hand_runner(work, single)()
    events = trace.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    share = sum(e.self_cpu_time_total for e in events if e.key in ONEDNN_KERNELS) / total
    return share, 1 / share if share else float("inf")


def channels_last(args) -> dict:
    work = lenet_digits()
    timed = Timed(len(work.x), interleaved({"nchw": hand_runner(work, args),
                                            "nhwc": hand_runner(work, args, channels_last=True)}, args.rounds))
    print(f"channels_last on the CPU (LeNet-5, hand loop): {timed.ratio('nhwc', 'nchw'):.3f}x the default layout "
          f"({timed.ratio('nhwc', 'nchw', 'cpu'):.3f}x by CPU time)")
    return {"channels_last_vs_default": round(timed.ratio("nhwc", "nchw"), 3),
            "channels_last_vs_default_cpu": round(timed.ratio("nhwc", "nchw", "cpu"), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also measure --compile (minutes: inductor compiles)")
    parser.add_argument("--only", choices=["lenet5", "spam_lstm"], help="with --compile: that model only, and "
                        "no data-path or channels_last figures")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)  # one run, in its own process
    parser.add_argument("--model", choices=["lenet5", "spam_lstm"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        one_side(args)
        return
    figures = {"batch": args.batch, "threads": args.threads, "rounds": args.rounds, "epochs": args.epochs}
    if not (args.compile and args.only):
        figures.update({"data_paths": data_paths(args), **channels_last(args)})
    if args.compile:
        with tempfile.TemporaryDirectory() as folder:
            figures["compile"] = compiled(args, Path(folder))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()

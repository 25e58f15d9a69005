"""Forward+backward time of specc-built modules against the same networks written by hand.

    python bench/forward_backward.py [--device cpu|cuda] [--rounds 60] [--json]

For LeNet-5 (specs/lenet5.spec) and the LSTM spam classifier (specs/spam_lstm.spec),
the module `spec_compiler.load(...).build()` returns and a hand-written PyTorch module
with the same weights run one training step's worth of work (forward_logits, the fused
loss, backward) side by side in one process. Repetitions are interleaved (built, hand,
hand, built, ...), so drift in machine load hits both alike; each round times a few
iterations of each, and the report gives the median per-iteration time, the ratio of
the medians built / hand, the median of the per-round ratios and the ratio of the
fastest rounds (1.00 = the same speed; the target is within 3%). On a busy machine,
`--control` (hand-written against a copy of itself) shows how far noise alone moves
these ratios. It also counts the aten operators one step runs in
each: the same counts mean the two do the same arithmetic, and any gap in time is the
Python around it.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import interleaved, median, paired_ratio  # noqa: E402

import spec_compiler  # noqa: E402


class HandLeNet5(nn.Module):
    """LeNet-5 as a PyTorch user writes it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.relu(self.conv1(x)), 2)
        x = F.avg_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)  # logits: the loss applies softmax


class HandSpamLSTM(nn.Module):
    """The brief's spam classifier as a PyTorch user writes it."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(1000, 100)
        self.lstm = nn.LSTM(100, 64, batch_first=True)
        self.fc1 = nn.Linear(64, 256)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(256, 1)

    def forward(self, x):
        out, _ = self.lstm(self.embedding(x))
        x = self.dropout(F.relu(self.fc1(out[:, -1])))
        return self.fc2(x)  # logits: the loss applies the sigmoid


def copy_weights(built: nn.Module, hand: nn.Module) -> None:
    """Give the hand-written module the built one's weights (same order, same shapes)."""
    source = list(built.state_dict().values())
    target = hand.state_dict()
    assert len(source) == len(target), (len(source), len(target))
    for (key, value), new in zip(target.items(), source):
        assert value.shape == new.shape, (key, value.shape, new.shape)
        value.copy_(new)


def cases(device: torch.device, batch_image: int, batch_text: int, control: bool = False):
    lenet = spec_compiler.load(ROOT / "specs" / "lenet5.spec").build(seed=0)
    hand_lenet = HandLeNet5()
    copy_weights(lenet, hand_lenet)
    images = torch.randn(batch_image, 1, 32, 32, device=device)
    labels = torch.randint(0, 10, (batch_image,), device=device)
    yield ("LeNet-5", lenet.to(device), hand_lenet.to(device), images,
           lambda logits: F.cross_entropy(logits, labels), f"batch {batch_image}, 1x32x32")
    if control:  # the same hand-written network twice: the ratio the machine's noise alone gives
        twin = HandLeNet5()
        twin.load_state_dict(hand_lenet.state_dict())
        yield ("control", twin.to(device), hand_lenet, images,
               lambda logits: F.cross_entropy(logits, labels), "LeNet-5 hand vs hand")

    spam = spec_compiler.load(ROOT / "specs" / "spam_lstm.spec").build(seed=0)
    hand_spam = HandSpamLSTM()
    copy_weights(spam, hand_spam)
    tokens = torch.randint(0, 1000, (batch_text, 150), device=device)
    targets = torch.randint(0, 2, (batch_text, 1), device=device).float()
    yield ("spam LSTM", spam.to(device), hand_spam.to(device), tokens,
           lambda logits: F.binary_cross_entropy_with_logits(logits, targets), f"batch {batch_text}, 150 tokens")


def step(model: nn.Module, x: torch.Tensor, loss_fn) -> None:
    forward = getattr(model, "forward_logits", model.forward)
    model.zero_grad(set_to_none=True)
    loss_fn(forward(x)).backward()


def timed(model, x, loss_fn, iterations: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        step(model, x, loss_fn)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations


class _OpCounter(TorchDispatchMode):
    """Counts the aten operators a step runs (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def aten_ops(model, x, loss_fn) -> collections.Counter:
    with _OpCounter() as counter:
        step(model, x, loss_fn)
    return counter.ops


def bench(device: torch.device, rounds: int, iterations: int, batch_image: int, batch_text: int,
          control: bool = False) -> list[dict]:
    results = []
    for name, built, hand, x, loss_fn, shape in cases(device, batch_image, batch_text, control):
        built.train()
        hand.train()
        built_ops, hand_ops = aten_ops(built, x, loss_fn), aten_ops(hand, x, loss_fn)
        difference = {op: built_ops[op] - hand_ops[op] for op in built_ops | hand_ops if built_ops[op] != hand_ops[op]}
        torch.manual_seed(0)
        for _ in range(3):  # warm up both (allocator, kernels, caches)
            step(built, x, loss_fn)
            step(hand, x, loss_fn)
        times = interleaved({"built": lambda: timed(built, x, loss_fn, iterations, device),
                             "hand": lambda: timed(hand, x, loss_fn, iterations, device)}, rounds, warmup=0)
        built_times, hand_times = times["built"], times["hand"]
        built_ms = median(built_times) * 1e3
        hand_ms = median(hand_times) * 1e3
        # Each round's two timings are adjacent in time: their ratio cancels slow drift in load.
        paired = paired_ratio(built_times, hand_times)
        results.append({
            "network": name, "input": shape, "device": str(device), "rounds": rounds, "iterations": iterations,
            "built_ms": round(built_ms, 4), "hand_ms": round(hand_ms, 4), "ratio": round(built_ms / hand_ms, 4),
            "paired_ratio": round(paired, 4), "best_ratio": round(min(built_times) / min(hand_times), 4),
            "params": sum(p.numel() for p in built.parameters()),
            "aten_ops": sum(built_ops.values()), "aten_ops_hand": sum(hand_ops.values()),
            "aten_op_difference": difference,
        })
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--iterations", type=int, default=3, help="iterations timed per round and network")
    parser.add_argument("--batch-image", type=int, default=32)
    parser.add_argument("--batch-text", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--control", action="store_true",
                        help="also time hand-written LeNet-5 against a copy of itself (the noise floor)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = bench(device, args.rounds, args.iterations, args.batch_image, args.batch_text, args.control)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"forward+backward per training step, median of {args.rounds} interleaved rounds "
          f"x {args.iterations} iterations, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'network':<10}  {'input':<22}  {'specc build()':>13}  {'hand-written':>12}  {'ratio':>6}  "
          f"{'paired':>6}  {'best':>6}")
    for r in results:
        print(f"{r['network']:<10}  {r['input']:<22}  {r['built_ms']:>10.3f} ms  {r['hand_ms']:>9.3f} ms  "
              f"{r['ratio']:>6.3f}  {r['paired_ratio']:>6.3f}  {r['best_ratio']:>6.3f}")
    print("ratio: median built / median hand-written; paired: median of each round's built / hand-written; "
          "best: fastest built / fastest hand-written round")
    for r in results:
        same = "the same" if not r["aten_op_difference"] else f"different: {r['aten_op_difference']}"
        print(f"{r['network']}: one step runs {r['aten_ops']} aten operators built, {r['aten_ops_hand']} hand-written "
              f"({same})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

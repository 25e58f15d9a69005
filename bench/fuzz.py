"""Fuzz specc: generated valid specs and mutated real ones, checked by the suite's oracle.

    python bench/fuzz.py [--cases 100000] [--seed 0] [--emit-every 8] [--onnx-every 500] [--json OUT]
                         [--examples DIR]

Half the cases are grown by tests/fuzz/generate.py (valid specs over every registry
kind, checked differentially: summary vs built module, every `--emit-every`-th one
also against its emitted source, every `--onnx-every`-th one exported by `specc export` in its
own process and verified with ONNX Runtime); half are real specs
(specs/, the golden error files, and fresh generated ones) damaged by
tests/fuzz/mutate.py. Each case is judged by tests/fuzz/oracle.py; findings are
grouped into classes (stage, exception, innermost spec_compiler frame), known classes
(tests/fuzz/known.py) apart from new ones, with the shortest example of each.

Case i of seed s is always the same: `--only i` replays it. One process, as the
machine is shared: run it under `nice`.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the fuzz package the suite uses

from fuzz.generate import generate  # noqa: E402
from fuzz.known import KNOWN  # noqa: E402
from fuzz.mutate import mutate  # noqa: E402
from fuzz.oracle import LIMIT_SECONDS, check_case, compile_check  # noqa: E402

CORPUS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.spec"))]
CORPUS += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests/golden/errors").glob("*.spec"))]


def case(seed: int, index: int, emit_every: int, onnx_every: int):
    """(kind, source, options for check_case) of case `index`."""
    rng = random.Random(f"{seed}-{index}")
    if index % 2 == 0:
        generated = generate(rng, compile_check)
        emit = emit_every > 0 and index % emit_every == 0
        onnx = onnx_every > 0 and index % onnx_every == 0 and not generated.trouble
        return "generated", generated.text, {"emit": emit, "onnx": "isolated" if onnx else False}
    base = rng.choice(CORPUS) if rng.random() < 0.6 else generate(rng, compile_check).text
    return "mutated", mutate(base, rng), {"emit": False, "onnx": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--emit-every", type=int, default=8, help="check --emit torch source on every Nth case")
    parser.add_argument("--onnx-every", type=int, default=500, help="export every Nth case (0: never)")
    parser.add_argument("--only", type=int, default=None, help="replay one case and print it")
    parser.add_argument("--json", type=Path, default=None, help="write the figures and classes here")
    parser.add_argument("--examples", type=Path, default=None, help="write the shortest example of each class here")
    parser.add_argument("--progress", type=int, default=1000,
                        help="print a line (and write --json so far) every N cases (0: never)")
    parser.add_argument("--memory-limit", type=float, default=6.0,
                        help="GiB of address space: a case that needs more fails inside (a finding), "
                             "rather than the system killing the whole run")
    args = parser.parse_args(argv)
    if args.memory_limit > 0 and hasattr(resource, "RLIMIT_AS"):
        limit = int(args.memory_limit * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(1)  # tiny models: one thread is as fast, and the machine is shared

    if args.only is not None:
        kind, source, options = case(args.seed, args.only, args.emit_every, args.onnx_every)
        print(f"--- case {args.only} ({kind}) ---\n{source!r}" if isinstance(source, bytes) else
              f"--- case {args.only} ({kind}) ---\n{source}")
        result = check_case(source, **options)
        for finding in result.findings:
            print(f"{finding.key}{' [known: ' + finding.known + ']' if finding.known else ''}: {finding.detail}")
        print(result.outcome, f"{result.seconds:.3f} s")
        return 0

    tally = Tally()
    started = time.perf_counter()
    for index in range(args.cases):
        kind, source, options = case(args.seed, index, args.emit_every, args.onnx_every)
        tally.add(index, kind, source, options, check_case(source, **options))
        if args.progress and (index + 1) % args.progress == 0:
            print(f"{index + 1} cases, {time.perf_counter() - started:.0f} s, {len(tally.classes)} classes", flush=True)
            if args.json:  # so far: a run that is stopped still leaves its figures
                tally.write_json(args.json, args.seed, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    print(tally.report(args.seed, elapsed))
    if args.examples:
        tally.write_examples(args.examples)
    if args.json:
        tally.write_json(args.json, args.seed, elapsed)
    return 1 if tally.new or tally.over_limit else 0


@dataclass
class Tally:
    """What the cases so far came to: outcomes, CPU times, finding classes with their shortest example."""

    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    classes: dict[str, dict] = field(default_factory=dict)
    slowest: float = 0.0
    over_limit: int = 0  # cases over LIMIT_SECONDS of CPU, but for a known hang
    known_hangs: int = 0
    exported: int = 0

    def add(self, index: int, kind: str, source, options: dict, result) -> None:
        self.cases += 1
        self.exported += bool(options["onnx"])
        self.outcomes[f"{kind} {result.outcome}"] += 1
        if result.seconds > LIMIT_SECONDS and result.findings and not result.unknown:
            self.known_hangs += 1  # interrupted by the oracle in a known hang
        else:
            self.slowest = max(self.slowest, result.seconds)
            self.over_limit += result.seconds > LIMIT_SECONDS
        for finding in result.findings:
            entry = self.classes.setdefault(finding.key, {"count": 0, "known": finding.known, "detail": finding.detail,
                                                          "case": index, "example": source})
            entry["count"] += 1
            if len(source) < len(entry["example"]):
                entry.update(case=index, example=source, detail=finding.detail)

    @property
    def new(self) -> dict[str, dict]:
        return {k: v for k, v in self.classes.items() if v["known"] is None}

    def report(self, seed: int, seconds: float) -> str:
        lines = [f"\n{self.cases:,} cases in {seconds:.0f} s (seed {seed}); {self.exported} ONNX exports"]
        lines += [f"  {key}: {count:,}" for key, count in sorted(self.outcomes.items())]
        lines.append(f"slowest compile + fmt (CPU): {self.slowest:.2f} s; over {LIMIT_SECONDS:g} s: {self.over_limit} "
                     f"(and {self.known_hangs} interrupted in a known hang)")
        lines.append(f"finding classes: {len(self.classes)} ({len(self.new)} not in tests/fuzz/known.py)")
        owners = {known.name: known.owner for known in KNOWN}
        for key, entry in sorted(self.classes.items(), key=lambda item: -item[1]["count"]):
            tag = f"known, for {owners[entry['known']]}: {entry['known']}" if entry["known"] else "NEW"
            lines.append(f"  [{tag}] {entry['count']:>6}x {key}\n      {entry['detail']}\n      replay: --only {entry['case']}")
        return "\n".join(lines)

    def write_examples(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for number, (key, entry) in enumerate(sorted(self.classes.items())):
            data = entry["example"]
            (folder / f"class{number:02d}.spec").write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
            (folder / f"class{number:02d}.txt").write_text(f"{key}\n{entry['detail']}\n", encoding="utf-8")

    def write_json(self, path: Path, seed: int, seconds: float) -> None:
        figures = {"cases": self.cases, "seed": seed, "seconds": round(seconds, 1), "outcomes": dict(self.outcomes),
                   "slowest_seconds": round(self.slowest, 3), "over_limit": self.over_limit,
                   "known_hangs": self.known_hangs, "onnx_exports": self.exported,
                   "classes": {k: {key: v[key] for key in ("count", "known", "detail", "case")}
                               for k, v in self.classes.items()}}
        path.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

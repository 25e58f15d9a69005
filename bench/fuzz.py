"""Fuzz specc: generated valid specs and mutated real ones, checked by the suite's oracle.

    python bench/fuzz.py [--cases 100000] [--seed 0] [--emit-every 8] [--onnx-every 500] [--json OUT]
                         [--examples DIR]

Half the cases are grown by tests/fuzz/generate.py (valid specs over every registry
kind, checked differentially: summary vs built module, every `--emit-every`-th one
also against its emitted source, every `--onnx-every`-th one exported and verified
with ONNX Runtime); half are real specs
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
import sys
import time
from collections import Counter
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
        return "generated", generated.text, {"emit": emit, "onnx": onnx}
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
    parser.add_argument("--progress", type=int, default=1000, help="print a line every N cases (0: never)")
    args = parser.parse_args(argv)
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

    outcomes: Counter[str] = Counter()
    classes: dict[str, dict] = {}
    slowest = 0.0
    over_limit = 0  # cases over LIMIT_SECONDS of CPU, but for a known hang
    known_slow = 0
    exported = 0
    started = time.perf_counter()
    for index in range(args.cases):
        kind, source, options = case(args.seed, index, args.emit_every, args.onnx_every)
        result = check_case(source, **options)
        exported += options["onnx"]
        outcomes[f"{kind} {result.outcome}"] += 1
        if result.seconds > LIMIT_SECONDS and result.findings and not result.unknown:
            known_slow += 1  # interrupted by the oracle: a known hang
        else:
            slowest = max(slowest, result.seconds)
            over_limit += result.seconds > LIMIT_SECONDS
        for finding in result.findings:
            entry = classes.setdefault(finding.key, {"count": 0, "known": finding.known, "detail": finding.detail,
                                                     "case": index, "example": source})
            entry["count"] += 1
            if len(source) < len(entry["example"]):
                entry.update(case=index, example=source, detail=finding.detail)
        if args.progress and (index + 1) % args.progress == 0:
            print(f"{index + 1} cases, {time.perf_counter() - started:.0f} s, {len(classes)} classes", flush=True)

    elapsed = time.perf_counter() - started
    new = {k: v for k, v in classes.items() if v["known"] is None}
    print(f"\n{args.cases:,} cases in {elapsed:.0f} s (seed {args.seed}); {exported} ONNX exports")
    for key, count in sorted(outcomes.items()):
        print(f"  {key}: {count:,}")
    print(f"slowest compile + fmt (CPU): {slowest:.2f} s; over {LIMIT_SECONDS:g} s: {over_limit} "
          f"(and {known_slow} interrupted in a known hang)")
    print(f"finding classes: {len(classes)} ({len(new)} not in tests/fuzz/known.py)")
    owners = {known.name: known.owner for known in KNOWN}
    for key, entry in sorted(classes.items(), key=lambda item: -item[1]["count"]):
        tag = f"known, for {owners[entry['known']]}: {entry['known']}" if entry["known"] else "NEW"
        print(f"  [{tag}] {entry['count']:>6}x {key}\n      {entry['detail']}\n      replay: --only {entry['case']}")
    if args.examples:
        args.examples.mkdir(parents=True, exist_ok=True)
        for number, (key, entry) in enumerate(sorted(classes.items())):
            data = entry["example"]
            path = args.examples / f"class{number:02d}.spec"
            path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
            (args.examples / f"class{number:02d}.txt").write_text(f"{key}\n{entry['detail']}\n", encoding="utf-8")
    if args.json:
        figures = {"cases": args.cases, "seed": args.seed, "seconds": round(elapsed, 1), "outcomes": dict(outcomes),
                   "slowest_seconds": round(slowest, 3), "over_limit": over_limit, "known_hangs": known_slow,
                   "onnx_exports": exported,
                   "classes": {k: {key: v[key] for key in ("count", "known", "detail", "case")}
                               for k, v in classes.items()}}
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 1 if new or over_limit else 0


if __name__ == "__main__":
    sys.exit(main())

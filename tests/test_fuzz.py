"""The fuzz test (issue 9): generated and mutated specs through every stage, judged by
tests/fuzz/oracle.py. A finding outside tests/fuzz/known.py fails the test with its
class and the spec that shows it; each known class's reproduction is a strict xfail, so
fixing a class fails that test until its entry in known.py is removed.

`python bench/fuzz.py` runs the same cases at scale (100,000 by default).
"""

from __future__ import annotations

import random

import pytest
import torch

from spec_compiler import REGISTRY

from fuzz.generate import generate
from fuzz.known import KNOWN
from fuzz.mutate import mutate
from fuzz.oracle import check_case, compile_check
from conftest import ROOT

GENERATED = 48
MUTATED = 400
EXPORTED = 3
HANG_SECONDS = 2  # of CPU: stricter than the benchmark's 6 s, and a known hang costs less
CORPUS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.spec"))]
CORPUS += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests/golden/errors").glob("*.spec"))]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is as fast, and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _report(cases) -> str:
    lines = []
    for source, result in cases:
        for finding in result.unknown:
            lines.append(f"{finding.key}: {finding.detail}\n--- spec ---\n{source!r}")
    return "\n\n".join(lines)


def test_generated_specs_agree_across_summary_module_and_source():
    cases, kinds, compiled = [], set(), 0
    for seed in range(GENERATED):
        generated = generate(random.Random(f"suite-{seed}"), compile_check)
        kinds |= generated.kinds
        result = check_case(generated.text, emit=seed % 3 == 0, hang_seconds=HANG_SECONDS)
        compiled += result.outcome == "compiled"
        cases.append((generated.text, result))
    assert not _report(cases), _report(cases)
    # the generator still does its job: mostly valid specs over many kinds
    assert compiled >= GENERATED // 2, compiled
    assert len(kinds & {k.name for k in REGISTRY.kinds()}) >= len(REGISTRY.kinds()) // 2, sorted(kinds)


def test_mutated_specs_yield_spec_errors_or_consistent_models():
    cases, spec_errors = [], 0
    for seed in range(MUTATED):
        rng = random.Random(f"suite-mutated-{seed}")
        source = mutate(rng.choice(CORPUS), rng)
        result = check_case(source, emit=False, hang_seconds=HANG_SECONDS)
        spec_errors += result.outcome == "spec_error"
        cases.append((source, result))
    assert not _report(cases), _report(cases)
    assert spec_errors >= MUTATED // 4, spec_errors  # the mutations do break specs


def test_generated_specs_export_and_verify_with_onnx_runtime():
    cases = []
    for seed in range(EXPORTED):
        generated = generate(random.Random(f"suite-onnx-{seed}"), compile_check)
        cases.append((generated.text, check_case(generated.text, emit=False, onnx=True)))
    assert not _report(cases), _report(cases)


@pytest.mark.parametrize("known", KNOWN, ids=[k.name for k in KNOWN])
@pytest.mark.xfail(strict=True, reason="a known crash class (tests/fuzz/known.py); remove its entry once fixed")
def test_known_crash_class_is_fixed(known):
    result = check_case(known.reproduce, onnx=known.stage == "export", path=known.path, hang_seconds=HANG_SECONDS)
    assert not [f for f in result.findings if known.matches(f, known.reproduce, known.path)], result.findings

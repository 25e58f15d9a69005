"""The fuzz test (issue 9): generated and mutated specs through every stage, judged by
tests/fuzz/oracle.py. A finding outside tests/fuzz/known.py fails the test with its
class and the spec that shows it; each known class's reproduction is a strict xfail, so
fixing a class fails that test until its entry in known.py is removed.

`python bench/fuzz.py` runs the same kinds of cases at scale (100,000 by default).
"""

from __future__ import annotations

import os
import random

import pytest
import torch
from click.testing import CliRunner
from conftest import ROOT

from fuzz.generate import generate
from fuzz.known import KNOWN
from fuzz.mutate import mutate
from fuzz.oracle import check_case, compile_check
from spec_compiler import REGISTRY
from spec_compiler.cli import main

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


OPTION_VALUES = {
    "--max-params": ["1", "0", "-1", "2e9", "inf", "nan", "1e400", "many", "", "9" * 400, "1e-9"],
    "--max-activation-memory": ["16GiB", "0", "-1GiB", "inf", "nan", "1e400GiB", "lots", "", "10MiB", "1.5kb"],
    "--depth": ["0", "1", "-1", "deep", "9" * 40, ""],
    "--emit": ["summary", "torch", "onnx", ""],
}


def test_compile_command_lines_end_in_exit_0_1_or_2(tmp_path):
    """Random values for compile's options: a result or one message, never a traceback."""
    spec = tmp_path / "small.spec"
    spec.write_text("input vector 4\ndense 3 relu\ndense 2 softmax\n")
    rng = random.Random("suite-cli")
    for _ in range(60):
        args = ["compile", str(spec)]
        for option in rng.sample(sorted(OPTION_VALUES), k=rng.randint(1, 3)):
            args += [option, rng.choice(OPTION_VALUES[option])]
        if rng.random() < 0.3:
            args += ["--json"]
        if rng.random() < 0.3:
            args += ["-o", rng.choice([str(tmp_path / "out.txt"), str(tmp_path), str(spec / "x"), "-", os.devnull])]
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)


@pytest.mark.parametrize("known", KNOWN, ids=[k.name for k in KNOWN])
@pytest.mark.xfail(strict=True, reason="a known crash class (tests/fuzz/known.py); remove its entry once fixed")
def test_known_crash_class_is_fixed(known):
    onnx = ("isolated" if known.isolated else True) if known.stage == "export" else False
    result = check_case(known.reproduce, onnx=onnx, path=known.path, hang_seconds=HANG_SECONDS)
    assert not [f for f in result.findings if known.matches(f, known.reproduce, known.path)], result.findings

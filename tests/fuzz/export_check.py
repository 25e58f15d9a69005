"""The ONNX export of a compiled model: verified, or refused with one message.

In process (the suite), or isolated as `specc export` in its own process (the long run):
there an exporter or ONNX Runtime that crashes the process, or a traceback on the
command line, is a finding like any other, and the run goes on.

Each check returns None, or (what went wrong, site, detail) for the oracle's Finding.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from spec_compiler import SpecError

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 600
# Refusals that are the right answer for the model, not a fault of export: no run-time
# length fits it (spec_compiler/length_range.py), or it computes NaN on every input tried,
# where the runtimes legitimately differ (export/verify.py).
EXPLAINED = re.compile(r"no run-time length fits this model|disagree on where the output is NaN")
_FRAME = re.compile(r'File "[^"]*?/(spec_compiler/[^"]+)", line \d+, in (\S+)')


def export_in_process(model, site_of, first_line):
    with tempfile.TemporaryDirectory() as folder:
        try:
            model.export(Path(folder) / "fuzz.onnx")
        except SpecError as error:
            return None if EXPLAINED.search(str(error)) else ("Refused", site_of(error), first_line(error))
        except Exception as error:  # noqa: BLE001 - a finding
            return type(error).__name__, site_of(error), first_line(error)
    return None


def export_isolated(text: str):
    """`specc export` on the spec in a fresh process: exit 0, or 1 with `error:` and no traceback
    (and, for a finding, not an EXPLAINED refusal)."""
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "fuzz.spec"
        spec.write_text(text, encoding="utf-8")
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, "-m", "spec_compiler.cli", "export", str(spec), "-o", str(Path(folder) / "fuzz.onnx")]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS, env=environment, check=False)
        except subprocess.TimeoutExpired:
            return "Timeout", "-", f"specc export still running after {SECONDS} s"
    if done.returncode < 0:
        return f"Signal{-done.returncode}", "-", f"specc export killed by signal {-done.returncode}"
    if "Traceback" in done.stderr:
        last = done.stderr.strip().splitlines()[-1]
        frames = _FRAME.findall(done.stderr)
        site = f"{frames[-1][0]}:{frames[-1][1]}" if frames else "-"
        return last.split(":", 1)[0], site, last[:300]
    if done.returncode == 1:
        message = next((line for line in done.stderr.splitlines() if "error:" in line), done.stderr.strip()[:300])
        return None if EXPLAINED.search(message) else ("Refused", "spec_compiler/export/", message[:300])
    if done.returncode != 0:
        return f"Exit{done.returncode}", "-", done.stderr.strip()[-300:]
    return None

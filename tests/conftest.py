"""Shared test helpers: golden files with an overwrite switch (as torchinfo's tests do).

Run `python -m pytest tests --overwrite` (or set SPECC_OVERWRITE=1) to rewrite every
golden `.out` file from the current output; then review the diff before committing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (a red CI run reproduces locally);
# SPECC_HYPOTHESIS=explore draws new ones each time, for a longer search.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("SPECC_HYPOTHESIS", "deterministic"))

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--overwrite", action="store_true", default=False,
                     help="rewrite golden files (tests/golden) from the current output")


@pytest.fixture
def overwrite(request) -> bool:
    return bool(request.config.getoption("--overwrite")) or os.environ.get("SPECC_OVERWRITE") == "1"


def check_golden(path: Path, actual: str, overwrite: bool) -> None:
    """Compare `actual` with the golden file at `path` (or write it when overwriting)."""
    actual = actual.rstrip("\n") + "\n"
    if overwrite or not path.exists():
        if not overwrite:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            pytest.fail(f"golden file {path.relative_to(ROOT)} was missing and has been written; review it")
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"output differs from {path.relative_to(ROOT)} (rerun with --overwrite or SPECC_OVERWRITE=1 "
        f"if the change is intended)\n--- expected\n{expected}\n--- actual\n{actual}"
    )


@pytest.fixture
def golden(overwrite):
    def check(path: Path, actual: str) -> None:
        check_golden(path, actual, overwrite)

    return check


# Tests are grouped by stage, one folder each; the folder gives the marker. `compiler`
# tests (and the editor, language-server and layout checks) run without torch installed:
# `python -m pytest -m compiler` is what CI runs in its torch-free environment.
STAGE_MARKERS = {"compiler": "compiler", "lsp": "compiler", "editors": "compiler", "architecture": "compiler",
                 "lowering": "torch", "training": "torch", "export": "torch", "zoo": "torch",
                 "experiments": "torch", "fuzz": "torch"}


def _torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # a test harness that blocked it
        return False


# Without torch, the torch stages are not even collected (their modules import torch).
collect_ignore = [] if _torch_installed() else [f for f, m in STAGE_MARKERS.items() if m == "torch"]


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).resolve().parent
    for item in items:
        if item.get_closest_marker("torch"):  # a test in a compiler folder that builds a module
            continue
        folder = Path(str(item.fspath)).resolve().relative_to(tests).parts[0]
        item.add_marker(getattr(pytest.mark, STAGE_MARKERS.get(folder, "torch")))

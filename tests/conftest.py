"""Shared test helpers: golden files with an overwrite switch (as torchinfo's tests do).

Run `python -m pytest tests --overwrite` (or set SPECC_OVERWRITE=1) to rewrite every
golden `.out` file from the current output; then review the diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

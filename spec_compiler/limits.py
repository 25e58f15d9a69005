"""The size limits a spec is checked against (`--max-params`, `--max-activation-memory`),
and the largest numbers and sizes it may write or compute.

Kept apart from inference.py so that the command line can show the defaults without
importing the compiler (and pydantic) for commands that never read a spec.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_INTEGER = 2**63 - 1  # what a PyTorch size or seed can hold: the largest whole number a spec may write or compute
MAX_DIMS = 16  # parts of a size like 3x224x224 (products of more could not even be printed)
DEFAULT_MAX_PARAMS = 2_000_000_000
DEFAULT_MAX_ACTIVATION_BYTES = 16 * 2**30  # per sample


@dataclass(frozen=True)
class Limits:
    """The largest model a compile accepts (`--max-params`, `--max-activation-memory`)."""

    max_params: int = DEFAULT_MAX_PARAMS
    max_activation_bytes: int = DEFAULT_MAX_ACTIVATION_BYTES


def parse_size(text: str) -> int:
    """'16GiB', '512MiB', '1e9' -> bytes."""
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9, "b": 1}
    lowered = text.strip().lower()
    for unit, factor in units.items():
        if lowered.endswith(unit):
            return int(float(lowered[: -len(unit)]) * factor)
    return int(float(lowered))

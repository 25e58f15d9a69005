"""The size limits a spec is checked against (`--max-params`, `--max-activation-memory`).

Kept apart from inference.py so that the command line can show the defaults without
importing the compiler (and pydantic) for commands that never read a spec.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_PARAMS = 2_000_000_000
DEFAULT_MAX_ACTIVATION_BYTES = 16 * 2**30  # per sample


@dataclass(frozen=True)
class Limits:
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

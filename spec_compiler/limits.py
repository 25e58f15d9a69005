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

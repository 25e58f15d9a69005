"""Which run-time lengths a model takes: its shape rules, run again on concrete lengths.

A `?` (or named) length compiles whatever it will be, but a length too short for the
model's windows and crops, or too long for a `max_length`, fails inside PyTorch at run
time. Export traces and verifies the graph on sample inputs, so it asks here for lengths
the model takes rather than fixed ones; when none fits, the message is the shape rule's.
"""

from __future__ import annotations

from dataclasses import replace

from .errors import Diagnostic, SpecError
from .inference import ModelInfo, infer
from .limits import Limits

NEAR = 64  # lengths tried on either side of the one wanted, before powers of two
LONGEST = 1 << 16
UNLIMITED = Limits(max_params=1 << 62, max_activation_bytes=1 << 62)


def refusal(info: ModelInfo, length: int) -> SpecError | None:
    """Why the model refuses inputs whose every run-time length is `length` (None: it takes them)."""
    ir = info.ir
    concrete = replace(ir, inputs=tuple(
        replace(spec, type=replace(spec.type, dims=tuple(length if isinstance(d, str) else d for d in spec.type.dims)))
        for spec in ir.inputs))
    try:
        infer(concrete, UNLIMITED)
    except SpecError as error:
        return error
    return None


def nearest_length(info: ModelInfo, wanted: int) -> int:
    """The length the model takes nearest to `wanted` (the shorter on a tie); a SpecError
    with the shape rule's reason when it takes none up to LONGEST."""
    candidates = [wanted]
    for step in range(1, NEAR + 1):
        candidates += [n for n in (wanted - step, wanted + step) if n >= 1]
    power = 1 << (wanted + NEAR).bit_length()
    while power <= LONGEST:
        candidates.append(power)
        power <<= 1
    for length in candidates:
        if refusal(info, length) is None:
            return length
    reason = refusal(info, wanted).diagnostics[0]
    raise SpecError(Diagnostic(
        f"no run-time length fits this model: at length {wanted}, {reason.message}", reason.span,
        "check the layers that need a minimum or maximum length (windows, crops, max_length)"), info.ir.source)


def sample_lengths(info: ModelInfo, wanted: tuple[int, ...]) -> tuple[int, ...]:
    """`wanted` with each length the model refuses moved to the nearest one it takes."""
    return tuple(nearest_length(info, n) for n in wanted)


__all__ = ["refusal", "nearest_length", "sample_lengths"]

"""The one timing helper every benchmark uses: speed is reported as a ratio against a
baseline measured side by side, in interleaved rounds, as medians (a shared, busy machine
makes absolute times noisy; adjacent measurements cancel slow drift in load)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def best_of(function: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` calls, in seconds (for start-up times: noise only adds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def per_call(function: Callable[[], object], budget_s: float, min_calls: int = 5) -> float:
    """Median seconds per call over as many calls as fit in `budget_s` (at least `min_calls`)."""
    times, start = [], time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < budget_s:
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def interleaved(runners: dict[str, Callable[[], float]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Each runner measures itself once per round and returns seconds; the order alternates
    from round to round. Returns every runner's per-round figures."""
    for runner in runners.values():
        for _ in range(warmup):
            runner()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for index in range(rounds):
        for name in (names if index % 2 == 0 else names[::-1]):
            samples[name].append(runners[name]())
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_ratio(measured: list[float], baseline: list[float]) -> float:
    """Median of the per-round ratios measured / baseline."""
    return statistics.median(m / b for m, b in zip(measured, baseline))

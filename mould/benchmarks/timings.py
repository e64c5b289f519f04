"""Repeated timing of a call: what every timed figure of the benches is made of."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated calls. On a shared machine the best run is the closest to the machine's own speed;
    the median shows what a user would wait."""

    median: float
    best: float

    def text(self) -> str:
        """``"median (best)"`` in seconds, 3 decimals."""
        return f"{self.median:.3f} ({self.best:.3f})"


def timings(function: Callable[[], object], repeats: int, warmup: int = 1) -> Timing:
    """Median and best of ``repeats`` timed calls after ``warmup`` untimed ones (first calls pay for lazy
    initialisation)."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return Timing(median=sorted(times)[len(times) // 2], best=min(times))

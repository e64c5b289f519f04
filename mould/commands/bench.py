"""``mould bench WHAT``: benchmarks that print figures (no assertions; the README keeps the table)."""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable

# name -> module mould.commands.bench_<name>, each with add_parser(subparsers) and run(args).
BENCHES = ("encode", "model", "mesh", "representation", "reconstruct", "synth")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmarks that print timings and errors",
        description="Run a benchmark and print its figures.",
    )
    inner = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name in BENCHES:
        importlib.import_module(f"mould.commands.bench_{name}").add_parser(inner)


def timings(function: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """(median, best) seconds of ``repeats`` timed calls after ``warmup`` untimed ones (first calls pay for
    lazy initialisation). On a shared machine the best run is the closest to the machine's own speed; the
    median shows what a user would wait."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], min(times)

"""``mould bench WHAT``: benchmarks that print figures (no assertions; the README keeps the table)."""

from __future__ import annotations

import argparse
import importlib

# name -> module mould.commands.bench_<name>, each with add_parser(subparsers) and run(args).
BENCHES = ("encode", "model", "mesh", "representation", "reconstruct")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmarks that print timings and errors",
        description="Run a benchmark and print its figures.",
    )
    inner = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name in BENCHES:
        importlib.import_module(f"mould.commands.bench_{name}").add_parser(inner)

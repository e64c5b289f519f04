"""The ``mould`` console script: one subcommand per job.

Each subcommand lives in ``mould/commands/<name>.py`` with two functions: ``add_parser(subparsers)``,
which declares its options (and must import nothing heavy), and ``run(args)``, which maps the options
onto the command's frozen config and calls the libraries. Heavy imports happen inside ``run``, so
``mould --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from mould.errors import MouldError

# name -> module under mould.commands; the order is the order of `mould --help`.
COMMANDS = (
    "reconstruct",
    "encode",
    "decode",
    "compare",
    "show",
    "bench",
    "train",
    "eval",
    "synth",
    "data",
    "model-info",
    "export-onnx",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mould",
        description="Moulding Humans: one photo of a person to a textured, watertight 3D mesh. "
        "Units are metres; cameras use OpenCV axes (x right, y down, z forward); depth is camera-space z.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        # a command "model-info" lives in the module mould/commands/model_info.py
        importlib.import_module(f"mould.commands.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose + 1, 2)]
    # Our own progress at INFO by default; other libraries' (anny's cache notes, ...) only with -vv.
    others = level if verbose >= 2 else max(logging.WARNING, level)
    logging.basicConfig(level=others, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mould").setLevel(level)
    # anny imports NVIDIA Warp, which prints banners to stdout unless told to be quiet.
    os.environ.setdefault("WARP_QUIET", "1")
    # OpenMP threads that spin while waiting starve each other whenever the cores are shared (torch's and
    # pymeshlab's OpenMP in one process, or any other busy process): measured on 2 cores, a training step
    # went from 4.7 s to 2.1 s and a Poisson solve from 25-100 s to ~6 s wall. Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some items failed, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    try:
        return int(args.run(args) or 0)
    except MouldError as error:
        print(f"mould {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mould: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

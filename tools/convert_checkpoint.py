"""Rewrite a mould checkpoint with its parameters in another precision: how a trained checkpoint becomes
shipped weights (fp16: half the file, outputs within float16 round-off of the float32 network).

Usage::

    python tools/convert_checkpoint.py SOURCE.safetensors TARGET.safetensors [--precision fp16|fp32]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source", type=Path, help="a .safetensors checkpoint (e.g. a run's step_XXXXXX.safetensors)"
    )
    parser.add_argument("target", type=Path, help="the file to write")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16", help="default fp16")
    args = parser.parse_args(argv)
    from mould.models.checkpoint import convert_checkpoint

    from mould.errors import InputError

    try:
        path = convert_checkpoint(args.source, args.target, precision=args.precision)
    except (InputError, ValueError) as error:
        print(f"convert_checkpoint: {error}", file=sys.stderr)
        return 2
    sizes = f"{args.source.stat().st_size:,} -> {path.stat().st_size:,} bytes"
    print(f"{args.source} -> {path} ({args.precision}, {sizes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

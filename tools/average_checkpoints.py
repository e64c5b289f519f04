"""Average checkpoints of one network tensor by tensor (a "model soup"): how weight averages of runs that
start from the same weights are made for the model card (stage 10's descendants, 2026-12-01).

Usage::

    python tools/average_checkpoints.py TARGET.safetensors SOURCE.safetensors SOURCE.safetensors [...]

The result is float32; ``tools/convert_checkpoint.py`` makes it shippable (fp16).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="the file to write (.safetensors)")
    parser.add_argument("sources", type=Path, nargs="+", help="two or more checkpoints of the same network")
    args = parser.parse_args(argv)
    from mould.models.checkpoint import average_checkpoints

    from mould.errors import InputError

    try:
        path = average_checkpoints(args.sources, args.target)
    except InputError as error:
        print(f"average_checkpoints: {error}", file=sys.stderr)
        return 2
    print(f"{path}: the average of {len(args.sources)} checkpoints")
    return 0


if __name__ == "__main__":
    sys.exit(main())

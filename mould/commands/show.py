"""``mould show MOULD.npz -o PICTURE.png``: a picture of a mould."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError
from mould.files import check_output_file, output_folder


@dataclass(frozen=True)
class ShowConfig:
    """Options of ``mould show``."""

    mould: Path
    """Input ``.npz`` mould file."""
    output: Path
    """Output ``.png`` picture."""

    def __post_init__(self) -> None:
        if self.output.suffix.lower() != ".png":
            raise InputError(f"{self.output}: the picture must be a .png file")
        check_output_file(self.output)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show",
        help="mould (.npz) -> PNG of the visible depth, hidden depth and mask",
        description="Draw a mould: its image (if stored), the visible and the hidden depth on one colour "
        "scale with a colour bar, and the mask, side by side.",
    )
    p.add_argument("mould", type=Path, help="input mould file (.npz)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output picture (.png)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = ShowConfig(mould=args.mould, output=args.output)
    from mould.container import Mould
    from mould.preview import mould_figure, save_figure

    mould = Mould.load(config.mould)
    output_folder(config.output.parent, config.output)
    try:
        save_figure(mould_figure(mould, title=config.mould.name), config.output)
    except OSError as error:  # a folder that is a file, no permission, a full disk
        raise InputError(f"{config.output}: cannot write ({error.strerror or error})") from None
    print(f"wrote {config.output}")
    return 0

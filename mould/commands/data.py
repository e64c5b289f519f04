"""``mould data show DIR -o sheet.png``: a contact sheet of a folder of training samples."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError
from mould.files import check_output_file


@dataclass(frozen=True)
class DataShowConfig:
    """Options of ``mould data show``."""

    folder: Path
    """A folder of samples (``mould synth`` output or any folder in the sample format)."""
    output: Path
    """Output ``.png`` contact sheet."""
    count: int = 8
    """How many samples to show, spread evenly over the folder."""
    columns: int = 2
    """Samples per row of the sheet."""
    panel: int = 128
    """Side of each panel in pixels."""

    def __post_init__(self) -> None:
        if self.output.suffix.lower() != ".png":
            raise InputError(f"{self.output}: the contact sheet must be a .png file")
        check_output_file(self.output)
        if not 1 <= self.count <= 1000:
            raise InputError(f"--count: expected 1 to 1000, got {self.count}")
        if not 1 <= self.columns <= 50:
            raise InputError(f"--columns: expected 1 to 50, got {self.columns}")
        if not 16 <= self.panel <= 1024:
            raise InputError(f"--panel: expected 16 to 1024, got {self.panel}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="look at training data: `mould data show DIR -o sheet.png`, `mould data stats DIR...`",
        description="Inspect a folder of training samples.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="contact sheet of samples: image, visible depth, hidden depth, mask",
        description="Draw a contact sheet: for each sample its image, its visible and hidden depth on one "
        "colour scale (near = yellow, far = blue) and its mask. Corrupt samples are reported and passed over.",
    )
    show.add_argument("folder", type=Path, help="folder of samples (NAME.png, NAME.npz, NAME.json)")
    show.add_argument("-o", "--output", type=Path, required=True, help="output contact sheet (.png)")
    show.add_argument(
        "--count",
        type=int,
        default=DataShowConfig.count,
        help="samples to show, spread over the folder (default %(default)s)",
    )
    show.add_argument(
        "--columns", type=int, default=DataShowConfig.columns, help="samples per row (default %(default)s)"
    )
    show.add_argument(
        "--panel", type=int, default=DataShowConfig.panel, help="panel side in pixels (default %(default)s)"
    )
    stats = actions.add_parser(
        "stats",
        help="figures of folders side by side: mask area, depth spread, views, poses, garments, hair",
        description="Print a Markdown table of what each folder of synthetic samples holds: mask area, depth "
        "spread, view angles, and the mix of pose families, garments and hairstyles.",
    )
    stats.add_argument("folders", type=Path, nargs="+", help="folders of samples")
    stats.add_argument("--limit", type=int, help="read at most this many samples of each folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "stats":
        from mould.datasets.stats import stats_table

        if args.limit is not None and args.limit < 1:
            raise InputError(f"--limit: expected >= 1, got {args.limit}")
        print(stats_table(args.folders, args.limit))
        return 0
    config = DataShowConfig(
        folder=args.folder, output=args.output, count=args.count, columns=args.columns, panel=args.panel
    )
    import imageio.v3 as iio

    from mould.datasets.sheet import contact_sheet
    from mould.files import check_output_folder, output_folder, write_atomic

    check_output_folder(config.output.parent, config.output)
    sheet, shown = contact_sheet(config.folder, config.count, columns=config.columns, panel=config.panel)
    output_folder(config.output.parent, config.output)
    data = iio.imwrite("<bytes>", sheet, extension=".png")
    write_atomic(config.output, lambda handle: handle.write(data))
    print(f"wrote {config.output}: {len(shown)} samples ({sheet.shape[1]}x{sheet.shape[0]} px)")
    return 0

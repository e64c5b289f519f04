"""``mould decode MOULD.npz -o OUT``: a mould back to an oriented point cloud (``--points``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mould.errors import InputError


@dataclass(frozen=True)
class DecodeConfig:
    """Options of ``mould decode``."""

    mould: Path
    """Input ``.npz`` mould file."""
    output: Path
    """Output file: ``.ply`` point cloud with normals when ``points`` is set."""
    points: bool = True
    """Write the oriented point cloud instead of a mesh."""
    normals: Literal["auto", "gradient", "stored"] = "auto"
    """Where normals come from: the depth gradients, the mould's stored normals, or stored when present."""
    side_band: bool = True
    """Add points along the silhouette's side band between the two maps."""

    def __post_init__(self) -> None:
        if self.points and self.output.suffix.lower() != ".ply":
            raise InputError(f"{self.output}: --points writes a .ply file")
        if not self.points:
            raise InputError("meshing is not available yet: use --points")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "decode",
        help="mould (.npz) -> oriented point cloud (--points)",
        description="Decode a mould: back-project the visible and hidden depth maps into the mould's world "
        "frame (so the decoding of an encoded mesh overlays that mesh), with normals out of the body.",
    )
    p.add_argument("mould", type=Path, help="input mould file (.npz)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.ply)")
    p.add_argument("--points", action="store_true", help="write the oriented point cloud as PLY with normals")
    p.add_argument(
        "--normals",
        choices=("auto", "gradient", "stored"),
        default="auto",
        help="normals from depth gradients, from the mould's stored normals, or stored when present (default)",
    )
    p.add_argument("--no-side-band", dest="side_band", action="store_false", help="omit the silhouette side band")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = DecodeConfig(
        mould=args.mould, output=args.output, points=args.points, normals=args.normals, side_band=args.side_band
    )
    from mould.container import Mould
    from mould.decode import mould_to_points
    from mould.recon.export import write_points_ply

    mould = Mould.load(config.mould)
    if not mould.mask.any():
        raise InputError(f"{config.mould}: no person in this mould (the mask is empty)")
    try:
        cloud = mould_to_points(mould, normals=config.normals, side=config.side_band)
    except ValueError as error:
        raise InputError(f"{config.mould}: {error}") from None
    config.output.parent.mkdir(parents=True, exist_ok=True)
    write_points_ply(config.output, cloud.points, cloud.normals)
    print(f"wrote {config.output}: {len(cloud)} oriented points")
    return 0

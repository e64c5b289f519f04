"""``mould encode MESH -o OUT.npz``: the mould of a mesh file."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from mould.camera import CAMERA_KINDS
from mould.checks import check_option
from mould.errors import InputError
from mould.files import check_output_file, output_folder
from mould.tolerances import DEFAULT_TOLERANCES


@dataclass(frozen=True)
class EncodeConfig:
    """Options of ``mould encode``."""

    mesh: Path
    """Input mesh file (PLY, OBJ, STL, OFF, GLB), metres, +Y up, the person facing +Z."""
    output: Path
    """Output ``.npz`` mould file."""
    resolution: int = 256
    """Side of the square crop in pixels."""
    camera: str = "perspective"
    """``perspective`` or ``orthographic``."""
    yaw: float = 0.0
    """Degrees about +Y; 0 looks from +Z towards -Z (at the person's front)."""
    elevation: float = 0.0
    """Degrees above the horizontal."""
    margin: float = 0.1
    """Free space around the figure, as a fraction of the crop's side."""
    normals: bool = True
    """Store the ground-truth normals of the hit faces."""

    def __post_init__(self) -> None:
        tol = DEFAULT_TOLERANCES
        if not tol.min_resolution <= self.resolution <= tol.max_resolution:
            raise InputError(
                f"--resolution: expected {tol.min_resolution} to {tol.max_resolution}, got {self.resolution}"
            )
        if self.camera not in CAMERA_KINDS:
            raise InputError(f"--camera: expected perspective or orthographic, got {self.camera}")
        check_option("--yaw", self.yaw)
        check_option("--elevation", self.elevation, -90, 90)
        if not 0 <= self.margin < 0.5:
            raise InputError(f"--margin: expected 0 <= margin < 0.5, got {self.margin}")
        if self.output.suffix.lower() != ".npz":
            raise InputError(f"{self.output}: the output must be a .npz file")
        check_output_file(self.output)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "encode",
        help="mesh -> mould (.npz): visible and hidden depth maps by ray casting",
        description="Encode a mesh as its mould: one ray per pixel; the visible depth is the first hit, the "
        "hidden depth the last hit. The camera looks at the mesh's bounding-box centre from +Z towards -Z "
        "with +Y up (glTF: a person faces +Z), turned by --yaw, and frames the mesh with a margin.",
    )
    p.add_argument("mesh", type=Path, help="input mesh (PLY, OBJ, STL, OFF, GLB) in metres, +Y up")
    p.add_argument("-o", "--output", type=Path, required=True, help="output mould file (.npz)")
    tol = DEFAULT_TOLERANCES
    p.add_argument(
        "--resolution",
        type=int,
        default=EncodeConfig.resolution,
        help=f"crop side in pixels, {tol.min_resolution} to {tol.max_resolution} (default %(default)s)",
    )
    p.add_argument(
        "--camera", choices=CAMERA_KINDS, default=EncodeConfig.camera, help="projection (default %(default)s)"
    )
    p.add_argument(
        "--yaw",
        type=float,
        default=EncodeConfig.yaw,
        help="camera turn about +Y in degrees (default %(default)s: from +Z)",
    )
    p.add_argument(
        "--elevation",
        type=float,
        default=EncodeConfig.elevation,
        help="camera elevation in degrees (default %(default)s)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=EncodeConfig.margin,
        help="free border as a fraction of the crop (default %(default)s)",
    )
    p.add_argument(
        "--no-normals", dest="normals", action="store_false", help="do not store the ground-truth face normals"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = EncodeConfig(
        mesh=args.mesh,
        output=args.output,
        resolution=args.resolution,
        camera=args.camera,
        yaw=args.yaw,
        elevation=args.elevation,
        margin=args.margin,
        normals=args.normals,
    )
    from mould.encode import encode_mesh
    from mould.framing import frame_points
    from mould.meshfile import load_mesh

    vertices, faces = load_mesh(config.mesh)
    try:
        camera = frame_points(
            vertices,
            config.resolution,
            kind=config.camera,
            yaw_deg=config.yaw,
            elevation_deg=config.elevation,
            margin=config.margin,
        )
        encoding = encode_mesh(vertices, faces, camera, normals=config.normals)
    except ValueError as error:
        raise InputError(f"{config.mesh}: {error}") from None
    if not encoding.mould.mask.any():
        raise InputError(f"{config.mesh}: no pixel of the crop sees the mesh")
    output_folder(config.output.parent, config.output)
    try:
        encoding.mould.save(config.output)
    except OSError as error:  # a folder that is a file, no permission, a full disk
        raise InputError(f"{config.output}: cannot write ({error.strerror or error})") from None
    mould = encoding.mould
    thickness = (mould.hidden - mould.visible)[mould.mask]
    print(
        f"wrote {config.output}: {config.resolution}x{config.resolution} {config.camera}, "
        f"{int(mould.mask.sum())} pixels on the person, depth {mould.visible[mould.mask].min():.3f}"
        f"-{mould.hidden[mould.mask].max():.3f} m, mean thickness {thickness.mean() * 100:.1f} cm"
    )
    return 0

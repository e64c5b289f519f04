"""``mould bench encode``: encode and decode times for an anny body at several resolutions."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from mould.commands.bench import timings
from mould.errors import InputError


@dataclass(frozen=True)
class BenchEncodeConfig:
    """Options of ``mould bench encode``."""

    mesh: Path | None = None
    """A mesh file to time instead of the default anny body."""
    resolutions: tuple[int, ...] = field(default=(256, 512))
    """Crop sides to time."""
    repeats: int = 20
    """Timed runs per figure; the median is reported (after one warm-up run)."""

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise InputError(f"--repeats: expected >= 1, got {self.repeats}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "encode",
        help="time mesh -> mould and mould -> points",
        description="Time encode (ray casting, with normals) and decode (points, gradient normals, side band) "
        "on an anny body (or --mesh) and print the median of --repeats runs.",
    )
    p.add_argument("--mesh", type=Path, default=None, help="mesh file to time (default: an anny body)")
    p.add_argument("--resolutions", type=int, nargs="+", default=[256, 512], help="crop sides (default 256 512)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per figure (default 20)")
    p.set_defaults(run=run)


def _median_ms(function, repeats: int) -> float:
    return timings(function, repeats)[0] * 1000


def run(args: argparse.Namespace) -> int:
    config = BenchEncodeConfig(mesh=args.mesh, resolutions=tuple(args.resolutions), repeats=args.repeats)
    from mould.decode import mould_to_points
    from mould.encode import encode_mesh
    from mould.framing import frame_points
    from mould.training.run_info import cpu_model

    if config.mesh is None:
        from mould.datasets.bodies import anny_body

        with contextlib.redirect_stdout(io.StringIO()):  # NVIDIA Warp announces its kernels on stdout
            vertices, faces = anny_body()
        name = "anny body (rest pose)"
    else:
        from mould.meshfile import load_mesh

        vertices, faces = load_mesh(config.mesh)
        name = str(config.mesh)
    print(f"mesh: {name}, {len(vertices)} vertices, {len(faces)} triangles")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (1 min)")
    print("| resolution | encode (ms) | encode + normals (ms) | decode (ms) | points |")
    print("| --- | --- | --- | --- | --- |")
    for resolution in config.resolutions:
        camera = frame_points(vertices, resolution)
        encode_ms = _median_ms(lambda camera=camera: encode_mesh(vertices, faces, camera), config.repeats)
        with_normals = lambda camera=camera: encode_mesh(vertices, faces, camera, normals=True)  # noqa: E731
        normals_ms = _median_ms(with_normals, config.repeats)
        mould = encode_mesh(vertices, faces, camera).mould
        decode_ms = _median_ms(lambda mould=mould: mould_to_points(mould, normals="gradient"), config.repeats)
        count = len(mould_to_points(mould))
        print(f"| {resolution}² | {encode_ms:.1f} | {normals_ms:.1f} | {decode_ms:.1f} | {count} |")
    return 0

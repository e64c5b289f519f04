"""``mould bench encode``: encode (mesh -> mould) and decode (mould -> points) times at several resolutions."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mould.benchmarks.timings import timings
from mould.checks import check_option
from mould.errors import InputError
from mould.machine import describe_machine
from mould.tolerances import DEFAULT_TOLERANCES


@dataclass(frozen=True)
class BenchEncodeConfig:
    """Options of ``mould bench encode``."""

    mesh: Path | None = None
    """A mesh file to time instead of the default anny body (rest pose)."""
    resolutions: tuple[int, ...] = field(default=(256, 512))
    """Crop sides to time, in pixels."""
    repeats: int = 20
    """Timed runs per figure; the median is reported (after one warm-up run)."""

    def __post_init__(self) -> None:
        tol = DEFAULT_TOLERANCES
        in_range = all(tol.min_resolution <= r <= tol.max_resolution for r in self.resolutions)
        if not self.resolutions or not in_range:
            raise InputError(f"--resolutions: expected sides from {tol.min_resolution} to {tol.max_resolution}")
        check_option("--repeats", self.repeats, 1, 10_000)


@dataclass(frozen=True)
class EncodeTiming:
    """The figures of one resolution: median milliseconds of ``repeats`` runs, and the decoded points."""

    resolution: int
    encode_ms: float
    """Ray casting, visible and hidden depth and mask."""
    normals_ms: float
    """The same with the hit faces' normals stored."""
    decode_ms: float
    """Back-projection to points with depth-gradient normals and the side band."""
    points: int
    """Points decoded: front, back and the side band at the silhouette."""

    def row(self) -> str:
        """This resolution as a row of :data:`ENCODE_HEADER`'s table."""
        return (
            f"| {self.resolution}² | {self.encode_ms:.1f} | {self.normals_ms:.1f} | {self.decode_ms:.1f} "
            f"| {self.points} |"
        )


ENCODE_HEADER = (
    "| resolution | encode (ms) | encode + normals (ms) | decode (ms) | points |\n| --- | --- | --- | --- | --- |"
)


def _median_ms(function: Callable[[], object], repeats: int) -> float:
    return timings(function, repeats).median * 1000


def bench_encode(config: BenchEncodeConfig, echo: Callable[[str], None]) -> list[EncodeTiming]:
    """Time encode and decode on the config's mesh at each resolution, framed by :func:`mould.frame_points`.

    ``echo`` receives the lines of the report (the mesh, the machine, a markdown table row by row).
    """
    from mould.decode import mould_to_points
    from mould.encode import encode_mesh
    from mould.framing import frame_points

    if config.mesh is None:
        from mould.datasets.bodies import anny_body

        with contextlib.redirect_stdout(io.StringIO()):  # NVIDIA Warp announces its kernels on stdout
            vertices, faces = anny_body()
        name = "anny body (rest pose)"
    else:
        from mould.meshfile import load_mesh

        vertices, faces = load_mesh(config.mesh)
        name = str(config.mesh)
    echo(f"mesh: {name}, {len(vertices)} vertices, {len(faces)} triangles")
    echo(f"machine: {describe_machine()}")
    echo(ENCODE_HEADER)
    results = []
    for resolution in config.resolutions:
        camera = frame_points(vertices, resolution)
        encode_ms = _median_ms(lambda camera=camera: encode_mesh(vertices, faces, camera), config.repeats)
        with_normals = lambda camera=camera: encode_mesh(vertices, faces, camera, normals=True)  # noqa: E731
        normals_ms = _median_ms(with_normals, config.repeats)
        mould = encode_mesh(vertices, faces, camera).mould
        decode_ms = _median_ms(lambda mould=mould: mould_to_points(mould, normals="gradient"), config.repeats)
        results.append(EncodeTiming(resolution, encode_ms, normals_ms, decode_ms, len(mould_to_points(mould))))
        echo(results[-1].row())
    return results

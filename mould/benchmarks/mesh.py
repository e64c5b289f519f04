"""``mould bench mesh``: mould -> watertight mesh time, triangle count and P2S per mesher, on anny bodies."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mould.checks import check_option
from mould.errors import InputError
from mould.files import check_output_file, check_output_folder, output_folder
from mould.limits import LIMITS
from mould.machine import describe_machine


@dataclass(frozen=True)
class BenchMeshConfig:
    """Options of ``mould bench mesh``."""

    count: int = 3
    """Anny bodies (the rest pose, then random phenotypes standing or walking)."""
    seed: int = 0
    """Seed of the bodies."""
    resolution: int = 256
    """Mould side in pixels."""
    depths: tuple[int, ...] = (7, 8, 9)
    """Poisson octree depths to time (pymeshlab, gradient normals); the others run at the default depth."""
    repeats: int = 3
    """Timed runs per figure; the median is reported."""
    samples: int = 50_000
    """Surface samples per mesh for P2S."""
    json: Path | None = None
    """Also write the figures as JSON here."""

    def __post_init__(self) -> None:
        check_option("--count", self.count, 1, 1000)
        check_option("--repeats", self.repeats, 1, 10_000)
        check_option("--seed", self.seed, 0, 2**63 - 1)
        check_option("--samples", self.samples, 1000, LIMITS.metric_samples)
        if self.json is not None:
            check_output_file(self.json)
        if not 16 <= self.resolution <= 2048:
            raise InputError(f"--resolution: expected 16 to 2048, got {self.resolution}")
        if not self.depths or not all(4 <= d <= 12 for d in self.depths):
            raise InputError("--depths: expected octree depths from 4 to 12")


@dataclass(frozen=True)
class MeshRow:
    """One mesher set-up over all bodies (the field names are the keys of the JSON file's rows)."""

    mesher: str
    """``stitch``, ``poisson pymeshlab dD`` or ``poisson open3d dD`` (D: the octree depth)."""
    normals: str
    """Poisson's normals: ``stored`` (the mould's exact ones) or ``gradient`` (from depth); ``-`` for stitch."""
    wall_s: float
    """Median wall time of a meshing, seconds."""
    cpu_s: float
    """Median CPU time of this process during a meshing, seconds (over wall_s: several threads)."""
    triangles: int
    """Mean triangle count."""
    watertight: str
    """``closed/bodies``."""
    p2s_mesh_to_body_mm: float
    """Mean point-to-surface distance from the mesh to the body, mm."""
    p2s_body_to_mesh_mm: float
    """The same from the body to the mesh, mm."""

    def row(self) -> str:
        """This set-up as a row of :data:`MESH_HEADER`'s table."""
        return (
            f"| {self.mesher} | {self.normals} | {self.wall_s * 1000:.0f} | {self.cpu_s * 1000:.0f} | "
            f"{self.triangles:,} | {self.watertight} | {self.p2s_mesh_to_body_mm:.2f} | "
            f"{self.p2s_body_to_mesh_mm:.2f} |"
        )


MESH_HEADER = (
    "| mesher | normals | wall (ms) | CPU (ms) | triangles | watertight | P2S mesh->body (mm) | "
    "P2S body->mesh (mm) |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _variants(config: BenchMeshConfig) -> list[tuple[str, str, dict]]:
    """(label, normals, mould_to_mesh keyword arguments) per mesher set-up."""
    from mould.recon.poisson import PoissonConfig

    default = PoissonConfig().depth
    variants = [("stitch", "-", {"mesher": "stitch"})]
    for normals in ("stored", "gradient"):
        for depth in config.depths if normals == "gradient" else (default,):
            settings = PoissonConfig(backend="pymeshlab", depth=depth)
            variants.append((f"poisson pymeshlab d{depth}", normals, {"mesher": "poisson", "poisson": settings}))
        settings = PoissonConfig(backend="open3d", depth=default)
        variants.append((f"poisson open3d d{default}", normals, {"mesher": "poisson", "poisson": settings}))
    return variants


def bench_mesh(config: BenchMeshConfig, echo: Callable[[str], None]) -> list[MeshRow]:
    """Encode ``config.count`` anny bodies as moulds (exact normals) and mesh each with every set-up.

    ``echo`` receives each row as it is measured, then the whole table (and the JSON file's path).
    """
    import statistics

    from mould.benchmarks.benchmark_bodies import benchmark_bodies
    from mould.encode import encode_mesh
    from mould.framing import frame_points
    from mould.recon.mesh import mould_to_mesh, topology
    from mould.recon.metrics import MetricConfig, compare_meshes

    if config.json is not None:  # before the work, which takes minutes
        check_output_folder(config.json.parent, config.json)
    bodies = benchmark_bodies(config.count, config.seed)
    moulds = [
        (encode_mesh(v, f, frame_points(v, config.resolution), normals=True).mould, v, f) for _, v, f in bodies
    ]
    echo(f"{len(bodies)} anny bodies, {config.resolution}² moulds; machine: {describe_machine()}")
    rows = []
    for label, normals, kwargs in _variants(config):
        walls, cpus, triangles, closed, forward, backward = [], [], [], [], [], []
        for mould, vertices, faces in moulds:
            extra = {} if normals == "-" else {"normals": normals}
            mesh = mould_to_mesh(mould, **kwargs, **extra)  # warm-up, and the mesh measured
            for _ in range(config.repeats):
                wall, cpu = time.perf_counter(), time.process_time()
                mould_to_mesh(mould, **kwargs, **extra)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            metrics = compare_meshes(mesh, (vertices, faces), MetricConfig(samples=config.samples))
            triangles.append(len(mesh.faces))
            closed.append(topology(mesh.vertices, mesh.faces).watertight)
            forward.append(metrics["p2s_a_to_b_mm"])
            backward.append(metrics["p2s_b_to_a_mm"])
        rows.append(
            MeshRow(
                mesher=label,
                normals=normals,
                wall_s=statistics.median(walls),
                cpu_s=statistics.median(cpus),
                triangles=round(statistics.mean(triangles)),
                watertight=f"{sum(closed)}/{len(closed)}",
                p2s_mesh_to_body_mm=statistics.mean(forward),
                p2s_body_to_mesh_mm=statistics.mean(backward),
            )
        )
        echo(rows[-1].row())
    echo("\n" + MESH_HEADER)
    for row in rows:
        echo(row.row())
    if config.json is not None:
        from mould.files import write_atomic

        output_folder(config.json.parent, config.json)
        report = {
            "resolution": config.resolution,
            "bodies": [name for name, _, _ in bodies],
            "rows": [dataclasses.asdict(row) for row in rows],
        }
        text = json.dumps(report, indent=2)
        write_atomic(config.json, lambda handle: handle.write(text.encode()))
        echo(f"wrote {config.json}")
    return rows

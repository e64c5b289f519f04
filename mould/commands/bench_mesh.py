"""``mould bench mesh``: mould -> watertight mesh time, triangle count and P2S for each mesher on anny bodies."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError


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
        if self.count < 1 or self.repeats < 1:
            raise InputError("--count and --repeats: expected >= 1")
        if not 16 <= self.resolution <= 2048:
            raise InputError(f"--resolution: expected 16 to 2048, got {self.resolution}")
        if not self.depths or not all(4 <= d <= 12 for d in self.depths):
            raise InputError("--depths: expected octree depths from 4 to 12")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mesh",
        help="time and accuracy of stitching and Poisson on anny moulds",
        description="Encode anny bodies as moulds (with exact normals), mesh each with direct stitching and "
        "screened Poisson (pymeshlab at several depths, open3d; exact and depth-gradient normals), and print "
        "the median wall and CPU time, triangle count, watertightness and P2S against the body in both "
        "directions.",
    )
    p.add_argument("--count", type=int, default=3, help="anny bodies (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bodies (default 0)")
    p.add_argument("--resolution", type=int, default=256, help="mould side in pixels (default 256)")
    p.add_argument("--depths", type=int, nargs="+", default=[7, 8, 9], help="Poisson depths (default 7 8 9)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per figure (default 3)")
    p.add_argument("--samples", type=int, default=50_000, help="surface samples for P2S (default 50000)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.set_defaults(run=run)


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


def _row_text(row: dict) -> str:
    return (
        f"| {row['mesher']} | {row['normals']} | {row['wall_s'] * 1000:.0f} | {row['cpu_s'] * 1000:.0f} | "
        f"{row['triangles']:,} | {row['watertight']} | {row['p2s_mesh_to_body_mm']:.2f} | "
        f"{row['p2s_body_to_mesh_mm']:.2f} |"
    )


def run(args: argparse.Namespace) -> int:
    config = BenchMeshConfig(
        count=args.count,
        seed=args.seed,
        resolution=args.resolution,
        depths=tuple(args.depths),
        repeats=args.repeats,
        samples=args.samples,
        json=args.json,
    )
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see mould.recon.poisson)
    import json
    import platform
    import statistics
    import time

    from mould.commands.bench_representation import benchmark_bodies
    from mould.encode import encode_mesh
    from mould.framing import frame_points
    from mould.recon.mesh import mould_to_mesh, topology
    from mould.recon.metrics import MetricConfig, compare_meshes

    bodies = benchmark_bodies(config.count, config.seed)
    moulds = [
        (encode_mesh(v, f, frame_points(v, config.resolution), normals=True).mould, v, f) for _, v, f in bodies
    ]
    print(f"{len(bodies)} anny bodies, {config.resolution}² moulds; {platform.machine()}, {os.cpu_count()} cores")
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
            {
                "mesher": label,
                "normals": normals,
                "wall_s": statistics.median(walls),
                "cpu_s": statistics.median(cpus),
                "triangles": round(statistics.mean(triangles)),
                "watertight": f"{sum(closed)}/{len(closed)}",
                "p2s_mesh_to_body_mm": statistics.mean(forward),
                "p2s_body_to_mesh_mm": statistics.mean(backward),
            }
        )
        print(_row_text(rows[-1]), flush=True)
    header = (
        "| mesher | normals | wall (ms) | CPU (ms) | triangles | watertight | P2S mesh->body (mm) | "
        "P2S body->mesh (mm) |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    print("\n" + header)
    for row in rows:
        print(_row_text(row))
    if config.json is not None:
        from mould.files import write_atomic

        config.json.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {"resolution": config.resolution, "bodies": [b[0] for b in bodies], "rows": rows}, indent=2
        )
        write_atomic(config.json, lambda handle: handle.write(text.encode()))
        print(f"wrote {config.json}")
    return 0

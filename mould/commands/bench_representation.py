"""``mould bench representation``: surface error of moulds vs voxel grids of equal dimensionality.

Reproduces the dimensionality-versus-error table of the Moulding Humans talk (DEVIEW 2019) on anny bodies
(or a folder of meshes): writes ``representation.md``, ``representation.json`` and ``representation.png``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchRepresentationConfig:
    """Options of ``mould bench representation``."""

    outdir: Path = Path("out/bench_representation")
    """Folder for representation.md, .json and .png."""
    meshes: Path | None = None
    """A folder of closed meshes (metres, +Y up) to use instead of anny bodies."""
    count: int = 4
    """Anny bodies to generate (or the first meshes of the folder)."""
    seed: int = 0
    """Seed of the bodies' phenotypes and poses."""
    mesher: str = "stitch"
    """How moulds are meshed back: ``stitch`` (fast at every size) or ``poisson`` (moulds over 512² skipped)."""
    dimensionalities: tuple[int, ...] = (64, 256, 1_024, 4_096, 16_384, 131_072, 1_048_576, 8_388_608)
    """Numbers stored per representation (mould: 2N², voxels: V³), the talk's by default."""
    samples: int = 50_000
    """Surface samples per mesh for the error (std. error of a mean ~0.5 %)."""
    plot: bool = True
    """Draw the log-log PNG."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InputError(f"--count: expected >= 1, got {self.count}")
        if self.mesher not in ("stitch", "poisson"):
            raise InputError(f"--mesher: expected stitch or poisson, got {self.mesher}")
        if not self.dimensionalities or min(self.dimensionalities) < 8 or max(self.dimensionalities) > 2**25:
            raise InputError("--dimensionalities: expected values from 8 to 33,554,432")
        if self.samples < 1000:
            raise InputError(f"--samples: expected >= 1000, got {self.samples}")
        if self.meshes is not None and not self.meshes.is_dir():
            raise InputError(f"{self.meshes}: not a folder")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "representation",
        help="mould vs voxel grid: surface error per dimensionality (the talk's table)",
        description="Encode meshes as moulds of N x N pixels (2N² numbers, meshed back with --mesher) and as "
        "voxel occupancy grids of V³ cells (marching cubes), and report the mean symmetric surface error in mm "
        "per dimensionality, beside the figures of the Moulding Humans talk. Writes a markdown table, JSON "
        "and a log-log plot to --outdir.",
    )
    p.add_argument("-o", "--outdir", type=Path, default=Path("out/bench_representation"), help="output folder")
    p.add_argument("--meshes", type=Path, default=None, help="folder of closed meshes (default: anny bodies)")
    p.add_argument("--count", type=int, default=4, help="number of bodies or meshes (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bodies' phenotypes and poses (default 0)")
    p.add_argument(
        "--mesher", choices=("stitch", "poisson"), default="stitch", help="mould mesher (default stitch)"
    )
    p.add_argument(
        "--dimensionalities", type=int, nargs="+", default=None, help="dimensionalities (default: the talk's 8)"
    )
    p.add_argument("--samples", type=int, default=50_000, help="surface samples per mesh (default 50000)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip the PNG")
    p.set_defaults(run=run)


def benchmark_bodies(count: int, seed: int = 0) -> list[tuple[str, object, object]]:
    """Anny bodies for benchmarks: the average body in its rest pose (an A-pose), then bodies of random
    phenotypes (each in [0.1, 0.9]) standing or walking, without self-collisions.

    Returns:
        (name, vertices (13718, 3) float64, faces (27420, 3) int64) per body, world frame (+Y up, facing +Z).
    """
    import numpy as np
    import torch

    from mould.datasets.bodies import PHENOTYPES, anny_faces, body_bank, posed_bodies
    from mould.datasets.collisions import body_collisions
    from mould.datasets.poses import pose_deltas, sample_pose

    rng = np.random.default_rng(seed)
    faces = anny_faces()
    bodies = [("rest pose, average", posed_bodies().vertices[0], faces)]
    while len(bodies) < count:
        phenotypes = {name: np.array([rng.uniform(0.1, 0.9)]) for name in PHENOTYPES}
        family, pose = sample_pose(rng, family=("standing", "walking")[len(bodies) % 2])
        posed = posed_bodies(phenotypes, pose_deltas([pose], body_bank().bone_labels))
        if body_collisions(torch.as_tensor(posed.vertices), torch.as_tensor(posed.bone_heads))[0]:
            continue
        described = ", ".join(f"{name} {value[0]:.2f}" for name, value in phenotypes.items())
        bodies.append((f"{family}, {described}", posed.vertices[0], faces))
    return bodies[:count]


def _folder_meshes(folder: Path, count: int) -> list[tuple[str, object, object]]:
    from mould.meshfile import MESH_SUFFIXES, load_mesh

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in MESH_SUFFIXES)[:count]
    if not paths:
        raise InputError(f"{folder}: no mesh files ({', '.join(MESH_SUFFIXES)})")
    return [(path.name, *load_mesh(path)) for path in paths]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _figure(dims, mould_mm, voxel_mm, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mould.preview import save_figure
    from mould.recon.representation import TALK_DIMENSIONALITIES, TALK_ERRORS_MM

    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    axis.loglog(dims, mould_mm, "o-", color="tab:blue", label="mould (this toolkit)")
    axis.loglog(dims, voxel_mm, "s-", color="tab:red", label="voxels + marching cubes (this toolkit)")
    talk = TALK_DIMENSIONALITIES
    axis.loglog(
        talk, [TALK_ERRORS_MM[d][0] for d in talk], "o--", color="tab:blue", alpha=0.4, label="mould (talk)"
    )
    axis.loglog(
        talk, [TALK_ERRORS_MM[d][1] for d in talk], "s--", color="tab:red", alpha=0.4, label="voxels (talk)"
    )
    axis.set_xlabel("dimensionality (numbers stored)")
    axis.set_ylabel("mean symmetric surface error (mm)")
    axis.set_title(title, fontsize=9)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    save_figure(figure, path, dpi=110)


def run(args: argparse.Namespace) -> int:
    config = BenchRepresentationConfig(
        outdir=args.outdir,
        meshes=args.meshes,
        count=args.count,
        seed=args.seed,
        mesher=args.mesher,
        samples=args.samples,
        plot=args.plot,
        **({"dimensionalities": tuple(args.dimensionalities)} if args.dimensionalities else {}),
    )
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see mould.recon.poisson)
    import json
    import platform
    import time

    from mould.files import write_atomic
    from mould.recon.representation import TALK_ERRORS_MM, compare_representations, mould_side, voxel_side

    logging.getLogger("mould.encode").setLevel(logging.ERROR)  # tight crops touch the border by design
    start = time.perf_counter()
    meshes = (
        _folder_meshes(config.meshes, config.count)
        if config.meshes is not None
        else benchmark_bodies(config.count, config.seed)
    )
    per_mesh = []
    for name, vertices, faces in meshes:
        print(f"{name}: ", end="", flush=True)
        results = compare_representations(
            vertices, faces, config.dimensionalities, mesher=config.mesher, samples=config.samples
        )
        per_mesh.append({"name": name, "results": [r.__dict__ for r in results]})
        print(" ".join(f"{r.mould_error_mm:.1f}/{r.voxel_error_mm:.1f}" for r in results), "mm", flush=True)
    dims = list(config.dimensionalities)
    mould_mm = [_mean([m["results"][i]["mould_error_mm"] for m in per_mesh]) for i in range(len(dims))]
    voxel_mm = [_mean([m["results"][i]["voxel_error_mm"] for m in per_mesh]) for i in range(len(dims))]
    seconds = time.perf_counter() - start

    def cell(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.2f}" if value < 10 else f"{value:.1f}"

    many = len(meshes) != 1
    what = (
        ("meshes" if many else "mesh") + f" from {config.meshes}"
        if config.meshes
        else ("anny bodies" if many else "anny body")
    )
    source = f"{len(meshes)} {what}"
    lines = [
        f"Mean symmetric surface error (mm), {source}, mould mesher: {config.mesher}.",
        "",
        "| dimensionality | mould N² x 2 | mould error | voxels V³ | voxel error | talk: mould / voxel | "
        "mould <= talk and <= voxel / 2 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d, m_err, v_err in zip(dims, mould_mm, voxel_mm):
        n, v = mould_side(d), voxel_side(d)
        talk = TALK_ERRORS_MM.get(d)
        talk_text = f"{talk[0]:g} / {talk[1]:g}" if talk else "—"
        target = "—"
        if talk and d >= 4_096:
            target = "yes" if (m_err <= talk[0] and m_err <= v_err / 2) else "**no**"
        sizes = f"| {d:,} | {n}² x 2 = {2 * n * n:,} | {cell(m_err)} | {v}³ = {v**3:,} |"
        lines.append(f"{sizes} {cell(v_err)} | {talk_text} | {target} |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    lines += ["", f"{seconds:.0f} s on {machine}."]
    table = "\n".join(lines)
    print()
    print(table)

    config.outdir.mkdir(parents=True, exist_ok=True)
    report = {
        "mesher": config.mesher,
        "samples": config.samples,
        "seed": config.seed,
        "machine": machine,
        "seconds": seconds,
        "dimensionalities": dims,
        "mould_error_mm": mould_mm,
        "voxel_error_mm": voxel_mm,
        "talk_error_mm": {str(d): TALK_ERRORS_MM[d] for d in dims if d in TALK_ERRORS_MM},
        "meshes": per_mesh,
    }
    text = json.dumps(report, indent=2, default=lambda value: None).replace("NaN", "null")
    write_atomic(config.outdir / "representation.json", lambda handle: handle.write(text.encode()))
    write_atomic(config.outdir / "representation.md", lambda handle: handle.write((table + "\n").encode()))
    written = ["representation.md", "representation.json"]
    if config.plot:
        title = f"Moulds vs voxel grids, {source} (mould mesher: {config.mesher})"
        _figure(dims, mould_mm, voxel_mm, config.outdir / "representation.png", title)
        written.append("representation.png")
    print(f"wrote {', '.join(str(config.outdir / name) for name in written)}")
    return 0

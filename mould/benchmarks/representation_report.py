"""``mould bench representation``: the representation experiment over a set of meshes, and its report.

Reproduces the dimensionality-versus-error table of the Moulding Humans talk (DEVIEW 2019) on anny bodies
(or a folder of meshes): writes ``representation.md``, ``representation.json`` and ``representation.png``.
The experiment itself is :mod:`mould.benchmarks.representation`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.benchmarks.representation import (
    TALK_DIMENSIONALITIES,
    TALK_ERRORS_MM,
    BenchRepresentationConfig,
    RepresentationResult,
    compare_representations,
    marching_cubes_module,
    mould_side,
    voxel_side,
)
from mould.errors import InputError
from mould.machine import describe_machine


@dataclass(frozen=True)
class RepresentationReport:
    """The experiment over all meshes."""

    source: str
    """What was measured, e.g. ``4 anny bodies``."""
    dimensionalities: tuple[int, ...]
    mould_error_mm: list[float]
    """Per dimensionality, the mean over the meshes where a mould was reconstructed (NaN: none was)."""
    voxel_error_mm: list[float]
    """The same for the voxel grids."""
    meshes: list[tuple[str, list[RepresentationResult]]]
    """(name, one result per dimensionality) per mesh."""
    seconds: float
    """Wall time of the experiment."""
    machine: str
    """:func:`mould.machine.describe_machine` at the end of the experiment."""


def _folder_meshes(folder: Path, count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, vertices (V, 3) float64, faces (F, 3) int64) of the folder's first ``count`` mesh files."""
    from mould.meshfile import MESH_SUFFIXES, load_mesh

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in MESH_SUFFIXES)[:count]
    if not paths:
        raise InputError(f"{folder}: no mesh files ({', '.join(MESH_SUFFIXES)})")
    return [(path.name, *load_mesh(path)) for path in paths]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def run_experiment(config: BenchRepresentationConfig, echo: Callable[[str], None]) -> RepresentationReport:
    """Mould and voxel errors of each mesh (anny bodies, or the config's folder) at each dimensionality.

    ``echo`` receives one line per mesh: its name and ``mould/voxel`` errors in mm per dimensionality.
    """
    marching_cubes_module()  # fail before the first mesh's moulds, not after them, when PyMCubes is missing
    start = time.perf_counter()
    if config.meshes is not None:
        meshes = _folder_meshes(config.meshes, config.count)
    else:
        from mould.benchmarks.benchmark_bodies import benchmark_bodies

        meshes = benchmark_bodies(config.count, config.seed)
    encode_log = logging.getLogger("mould.encode")
    level = encode_log.level
    encode_log.setLevel(logging.ERROR)  # tight crops touch the border by design
    try:
        per_mesh = []
        for name, vertices, faces in meshes:
            results = compare_representations(
                vertices, faces, config.dimensionalities, mesher=config.mesher, samples=config.samples
            )
            per_mesh.append((name, results))
            echo(f"{name}: " + " ".join(f"{r.mould_error_mm:.1f}/{r.voxel_error_mm:.1f}" for r in results) + " mm")
    finally:
        encode_log.setLevel(level)
    dims = tuple(config.dimensionalities)
    many = len(meshes) != 1
    what = (
        ("meshes" if many else "mesh") + f" from {config.meshes}"
        if config.meshes
        else ("anny bodies" if many else "anny body")
    )
    return RepresentationReport(
        source=f"{len(meshes)} {what}",
        dimensionalities=dims,
        mould_error_mm=[_mean([r[i].mould_error_mm for _, r in per_mesh]) for i in range(len(dims))],
        voxel_error_mm=[_mean([r[i].voxel_error_mm for _, r in per_mesh]) for i in range(len(dims))],
        meshes=per_mesh,
        seconds=time.perf_counter() - start,
        machine=describe_machine(),
    )


def representation_table(report: RepresentationReport, mesher: str) -> str:
    """The markdown table of ``representation.md``: sizes and errors per dimensionality, beside the talk's."""

    def cell(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.2f}" if value < 10 else f"{value:.1f}"

    lines = [
        f"Mean symmetric surface error (mm), {report.source}, mould mesher: {mesher}.",
        "",
        "| dimensionality | mould N² x 2 | mould error | voxels V³ | voxel error | talk: mould / voxel | "
        "mould <= talk and <= voxel / 2 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d, m_err, v_err in zip(report.dimensionalities, report.mould_error_mm, report.voxel_error_mm):
        n, v = mould_side(d), voxel_side(d)
        talk = TALK_ERRORS_MM.get(d)
        talk_text = f"{talk[0]:g} / {talk[1]:g}" if talk else "—"
        target = "—"
        if talk and d >= 4_096:
            target = "yes" if (m_err <= talk[0] and m_err <= v_err / 2) else "**no**"
        sizes = f"| {d:,} | {n}² x 2 = {2 * n * n:,} | {cell(m_err)} | {v}³ = {v**3:,} |"
        lines.append(f"{sizes} {cell(v_err)} | {talk_text} | {target} |")
    lines += ["", f"{report.seconds:.0f} s on {report.machine}."]
    return "\n".join(lines)


def _figure(report: RepresentationReport, path: Path, title: str) -> None:
    """Log-log plot of both errors per dimensionality, with the talk's figures dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mould.preview import save_figure

    dims = report.dimensionalities
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    axis.loglog(dims, report.mould_error_mm, "o-", color="tab:blue", label="mould (this toolkit)")
    axis.loglog(dims, report.voxel_error_mm, "s-", color="tab:red", label="voxels + marching cubes (this toolkit)")
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


def bench_representation(config: BenchRepresentationConfig, echo: Callable[[str], None]) -> RepresentationReport:
    """Run the experiment and write ``representation.md`` (the table), ``representation.json`` (every figure,
    per mesh too; NaN as null) and ``representation.png`` (unless ``config.plot`` is off) to ``config.outdir``.

    ``echo`` receives a line per mesh, the table, and the files written.
    """
    from mould.files import check_output_folder, output_folder, write_atomic

    check_output_folder(config.outdir)  # before the work, which takes minutes
    report = run_experiment(config, echo)
    table = representation_table(report, config.mesher)
    echo("")
    echo(table)
    output_folder(config.outdir)
    dims = list(report.dimensionalities)
    content = {
        "mesher": config.mesher,
        "samples": config.samples,
        "seed": config.seed,
        "machine": report.machine,
        "seconds": report.seconds,
        "dimensionalities": dims,
        "mould_error_mm": report.mould_error_mm,
        "voxel_error_mm": report.voxel_error_mm,
        "talk_error_mm": {str(d): TALK_ERRORS_MM[d] for d in dims if d in TALK_ERRORS_MM},
        "meshes": [
            {"name": name, "results": [dataclasses.asdict(r) for r in results]} for name, results in report.meshes
        ],
    }
    text = json.dumps(content, indent=2, default=lambda value: None).replace("NaN", "null")
    write_atomic(config.outdir / "representation.json", lambda handle: handle.write(text.encode()))
    write_atomic(config.outdir / "representation.md", lambda handle: handle.write((table + "\n").encode()))
    written = ["representation.md", "representation.json"]
    if config.plot:
        title = f"Moulds vs voxel grids, {report.source} (mould mesher: {config.mesher})"
        _figure(report, config.outdir / "representation.png", title)
        written.append("representation.png")
    echo(f"wrote {', '.join(str(config.outdir / name) for name in written)}")
    return report

"""``mould bench reconstruct``: photo -> textured mesh, end to end, per stage and for a batch."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mould.checks import check_option
from mould.errors import InputError
from mould.machine import describe_machine
from mould.recon.mesh import MESHERS, Mesher

STAGES = ("load", "crop", "predict", "mesh", "texture")
"""The pipeline's timed stages (:attr:`mould.reconstruction.pipeline.ImageReport.timings`), export apart."""


@dataclass(frozen=True)
class BenchReconstructConfig:
    """Options of ``mould bench reconstruct``."""

    images: Path | None = None
    """A folder of photos; default: ``count`` fresh synthetic samples (seed 123) at 256²."""
    count: int = 50
    """Photos in the batch."""
    meshers: tuple[Mesher, ...] = ("stitch", "poisson")
    """Meshers to time."""
    checkpoint: Path | None = None
    """Weights (a .safetensors file or a training run folder); default: the shipped model."""

    def __post_init__(self) -> None:
        check_option("--count", self.count, 1, 10_000)
        if not self.meshers or not set(self.meshers) <= set(MESHERS):
            raise InputError(f"--meshers: expected some of {', '.join(MESHERS)}")


@dataclass(frozen=True)
class ReconstructTiming:
    """The figures of one mesher over the batch (medians over the photos that succeeded)."""

    mesher: str
    stage_ms: dict[str, float] = field(default_factory=dict)
    """Median milliseconds per stage of :data:`STAGES`."""
    end_to_end_s: float = 0.0
    """Median seconds a photo, all stages but the export."""
    export_ms: float = 0.0
    """Median milliseconds to write the OBJ."""
    photos_per_s: float = 0.0
    """The whole batch's throughput, export included."""
    failed: int = 0
    """Photos that failed."""
    error: str | None = None
    """The first photo's error, when every photo failed (the other figures are then empty)."""

    def row(self) -> str:
        """This mesher as a row of the table that :func:`bench_reconstruct` echoes."""
        if self.error is not None:
            return f"| {self.mesher} | every photo failed: {self.error} |"
        stages = " | ".join(f"{self.stage_ms[s]:.0f}" for s in STAGES)
        return (
            f"| {self.mesher} | {stages} | {self.end_to_end_s:.2f} | {self.export_ms:.0f} | "
            f"{self.photos_per_s:.2f} | {self.failed} |"
        )


def _timing(mesher: str, reports: list, batch_seconds: float) -> ReconstructTiming:
    """Medians of the pipeline's per-photo ``reports`` (:class:`~mould.reconstruction.pipeline.ImageReport`)."""
    good = [r for r in reports if r.status == "ok"]
    if not good:
        return ReconstructTiming(mesher, failed=len(reports), error=reports[0].error)
    return ReconstructTiming(
        mesher,
        stage_ms={s: 1000 * float(np.median([r.timings.get(s, 0.0) for r in good])) for s in STAGES},
        end_to_end_s=float(np.median([sum(r.timings.get(s, 0.0) for s in STAGES) for r in good])),
        export_ms=1000 * float(np.median([r.timings.get("export", 0.0) for r in good])),
        photos_per_s=len(reports) / batch_seconds,
        failed=len(reports) - len(good),
    )


def bench_reconstruct(config: BenchReconstructConfig, echo: Callable[[str], None]) -> list[ReconstructTiming]:
    """Run the reconstruct pipeline (OBJ only, no preview) on CPU over the batch with each mesher, after one
    warm-up photo. The model's load is timed apart; outputs go to a temporary folder, deleted at the end.

    ``echo`` receives the machine, model and photo lines, then a markdown table, row by row.
    """
    import torch

    from mould.models.runtime import load_predictor
    from mould.reconstruction.config import ReconstructConfig
    from mould.reconstruction.pipeline import Reconstructor, collect_inputs

    with tempfile.TemporaryDirectory(prefix="mould-bench-") as scratch:
        if config.images is None:
            from mould.datasets.synth_folder import synthesize

            folder = Path(scratch) / "photos"
            synthesize(folder, config.count, seed=123, progress=False)
            images = sorted(folder.glob("*.png"))
        else:
            images = collect_inputs([config.images])[: config.count]

        clock = time.perf_counter()
        network, checkpoint, runtime = load_predictor(config.checkpoint, "cpu")  # the default runtime
        load_seconds = time.perf_counter() - clock
        echo(f"machine: {describe_machine()}; torch {torch.__version__} with {torch.get_num_threads()} threads")
        echo(f"model: {checkpoint} ({network.config.name}) run by {runtime}, load {load_seconds:.2f} s (apart)")
        echo(f"photos: {len(images)} from {config.images or 'mould synth --seed 123'}")
        echo(
            "| mesher | " + " | ".join(f"{s} (ms)" for s in STAGES) + " | end to end (s) | export OBJ (ms) "
            "| batch (photos/s) | failed |"
        )
        echo("| --- " * (len(STAGES) + 5) + "|")
        results = []
        for mesher in config.meshers:
            outdir = Path(scratch) / mesher
            outdir.mkdir()
            settings = ReconstructConfig(outdir=outdir, formats=("obj",), mesher=mesher, preview=False)
            reconstructor = Reconstructor(network, settings)
            reconstructor.run_one(images[0], "warmup", None)  # first calls pay for lazy initialisation
            clock = time.perf_counter()
            reports = [reconstructor.run_one(path, f"p{i}", None) for i, path in enumerate(images)]
            results.append(_timing(mesher, reports, time.perf_counter() - clock))
            echo(results[-1].row())
    return results

"""``mould bench reconstruct``: photo -> textured mesh, end to end, per stage and for a batch."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError
from mould.training.run_info import cpu_model


@dataclass(frozen=True)
class BenchReconstructConfig:
    """Options of ``mould bench reconstruct``."""

    images: Path | None = None
    """A folder of photos; default: ``count`` fresh synthetic samples (seed 123) at 256²."""
    count: int = 50
    """Photos in the batch."""
    meshers: tuple[str, ...] = ("stitch", "poisson")
    """Meshers to time."""
    checkpoint: Path | None = None
    """Weights; default: the shipped model."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InputError(f"--count: expected >= 1, got {self.count}")
        if not set(self.meshers) <= {"stitch", "poisson"}:
            raise InputError("--meshers: expected stitch and/or poisson")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="time photo -> textured mesh end to end, per stage and for a batch",
        description="Run the reconstruct pipeline (load, frame, predict, mesh, texture; export to OBJ "
        "timed apart) on a batch of photos with each mesher. Prints the median time per stage, the end-to-end "
        "median per photo and the batch throughput; the model load is reported separately.",
    )
    p.add_argument("--images", type=Path, default=None, help="folder of photos (default: synthesise --count)")
    p.add_argument("--count", type=int, default=50, help="photos in the batch (default 50)")
    p.add_argument("--meshers", nargs="+", default=["stitch", "poisson"], help="meshers (default stitch poisson)")
    p.add_argument("--checkpoint", type=Path, default=None, help="weights (default: the shipped model)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = BenchReconstructConfig(
        images=args.images, count=args.count, meshers=tuple(args.meshers), checkpoint=args.checkpoint
    )
    import numpy as np
    import torch

    from mould.commands.reconstruct import load_network
    from mould.reconstruction.pipeline import ReconstructConfig, Reconstructor, collect_inputs

    scratch = tempfile.TemporaryDirectory(prefix="mould-bench-")
    if config.images is None:
        from mould.datasets.synth_folder import synthesize

        folder = Path(scratch.name) / "photos"
        synthesize(folder, config.count, seed=123, progress=False)
        images = sorted(folder.glob("*.png"))
    else:
        images = collect_inputs([config.images])[: config.count]

    clock = time.perf_counter()
    model, model_config, checkpoint = load_network(config.checkpoint, "cpu")
    load_seconds = time.perf_counter() - clock
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}"
    )
    print(f"model: {checkpoint} ({model_config.name}), load {load_seconds:.2f} s (reported apart)")
    print(f"photos: {len(images)} from {config.images or 'mould synth --seed 123'}")
    stages = ("load", "crop", "predict", "mesh", "texture")
    print(
        "| mesher | " + " | ".join(f"{s} (ms)" for s in stages) + " | end to end (s) | export OBJ (ms) "
        "| batch (photos/s) | failed |"
    )
    print("| --- " * (len(stages) + 5) + "|")
    for mesher in config.meshers:
        outdir = Path(scratch.name) / mesher
        outdir.mkdir()
        settings = ReconstructConfig(outdir=outdir, formats=("obj",), mesher=mesher, preview=False)
        reconstructor = Reconstructor(model, settings, "cpu")
        reconstructor.run_one(images[0], "warmup", None)  # first calls pay for lazy initialisation
        clock = time.perf_counter()
        reports = [reconstructor.run_one(path, f"p{i}", None) for i, path in enumerate(images)]
        batch_seconds = time.perf_counter() - clock
        good = [r for r in reports if r.status == "ok"]
        if not good:
            print(f"| {mesher} | every photo failed: {reports[0].error} |")
            continue
        medians = {s: 1000 * float(np.median([r.timings.get(s, 0.0) for r in good])) for s in stages}
        end_to_end = float(np.median([sum(r.timings.get(s, 0.0) for s in stages) for r in good]))
        export = 1000 * float(np.median([r.timings.get("export", 0.0) for r in good]))
        row = " | ".join(f"{medians[s]:.0f}" for s in stages)
        print(
            f"| {mesher} | {row} | {end_to_end:.2f} | {export:.0f} | {len(reports) / batch_seconds:.2f} "
            f"| {len(reports) - len(good)} |"
        )
    scratch.cleanup()
    return 0

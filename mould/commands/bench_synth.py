"""``mould bench synth``: how many synthetic samples per second the generator makes, in memory."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError


@dataclass(frozen=True)
class BenchSynthConfig:
    """Options of ``mould bench synth``."""

    device: str = "cpu"
    """``cpu`` (workers make whole samples) or ``cuda`` (workers draw, the GPU renders batches)."""
    seconds: float = 30.0
    """Length of the timed window (after start-up and a first batch)."""
    batch: int | None = None
    """Samples rendered at once (default: 1 on the CPU, each worker making whole samples; 128 on a GPU)."""
    workers: int = 1
    """Worker processes."""
    resolution: int = 256
    """Crop side in pixels."""
    json_path: Path | None = None
    """Also write the figures to this JSON file."""

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"--device: expected cpu or cuda, got {self.device}")
        if not self.seconds > 0:
            raise InputError(f"--seconds: expected > 0, got {self.seconds}")
        if (self.batch is not None and self.batch < 1) or self.workers < 1:
            raise InputError(f"--batch, --workers: expected >= 1, got {self.batch}, {self.workers}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="samples per second of the synthetic generator (in memory, no files)",
        description="Make synthetic samples in memory for --seconds and print the rate: on the CPU, --workers "
        "processes make whole samples; with --device cuda, --workers processes draw and the GPU builds and "
        "renders batches of --batch (what `mould train --data synth` does on a GPU). `mould synth` adds "
        "writing the files.",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    p.add_argument("--seconds", type=float, default=30.0, help="timed window (default 30)")
    p.add_argument("--batch", type=int, help="samples rendered at once (default 1 on cpu, 128 on cuda)")
    p.add_argument("--workers", type=int, default=1, help=f"processes (default 1; {os.cpu_count()} cores here)")
    p.add_argument("--resolution", type=int, default=256, help="crop side (default 256)")
    p.add_argument("--json", type=Path, dest="json_path", help="also write the figures to this JSON file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = BenchSynthConfig(args.device, args.seconds, args.batch, args.workers, args.resolution, args.json_path)
    import torch

    from mould.datasets.synth_folder import generation_speed
    from mould.datasets.synthetic import SynthConfig
    from mould.training.run_info import cpu_model

    if config.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device on this machine")
    batch = config.batch or (128 if config.device == "cuda" else 1)
    speed = generation_speed(SynthConfig(resolution=config.resolution), device=config.device,
                             seconds=config.seconds, batch=batch, workers=config.workers)  # fmt: skip
    machine = torch.cuda.get_device_name() if config.device == "cuda" else cpu_model()
    figures = {
        "device": config.device,
        "machine": machine,
        "cores": os.cpu_count(),
        "load": os.getloadavg()[0],
        "workers": config.workers,
        "batch": batch,
        "resolution": config.resolution,
        "samples": speed.samples,
        "seconds": round(speed.seconds, 2),
        "samples_per_second": round(speed.samples_per_second, 2),
        "samples_per_cpu_second": round(speed.samples / speed.cpu_seconds, 2) if speed.cpu_seconds else None,
        "render_seconds": round(speed.render_seconds, 2),
    }
    print(
        f"mould bench synth: {speed.samples} samples in {speed.seconds:.1f} s = {speed.samples_per_second:.1f} "
        f"samples/s ({figures['samples_per_cpu_second']} per CPU-second) at {config.resolution}², "
        f"{config.device}, {config.workers} workers"
        + (
            f", batch {batch}, device busy {speed.render_seconds / max(speed.seconds, 1e-9):.0%}"
            if batch > 1
            else ""
        )
        + f"; {machine}"
    )
    if config.json_path is not None:
        config.json_path.write_text(json.dumps(figures, indent=1))
    return 0

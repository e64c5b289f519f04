"""``mould bench synth``: how many synthetic samples per second the generator makes, in memory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError
from mould.machine import describe_machine


@dataclass(frozen=True)
class BenchSynthConfig:
    """Options of ``mould bench synth``."""

    device: str = "cpu"
    """``cpu`` or ``cuda``: where samples are built and rendered."""
    seconds: float = 30.0
    """Length of the timed window (after the workers' start-up and a first batch)."""
    batch: int | None = None
    """Samples rendered at once: 1 on the CPU by default (each worker makes whole samples), 128 on a GPU
    (workers draw, the device builds and renders batches, as ``mould train --data synth`` does there)."""
    workers: int = 1
    """Worker processes."""
    resolution: int = 256
    """Crop side in pixels."""
    json: Path | None = None
    """Also write the figures to this JSON file."""

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"--device: expected cpu or cuda, got {self.device}")
        if not self.seconds > 0:
            raise InputError(f"--seconds: expected > 0, got {self.seconds}")
        if (self.batch is not None and self.batch < 1) or self.workers < 1:
            raise InputError(f"--batch, --workers: expected >= 1, got {self.batch}, {self.workers}")
        if not 16 <= self.resolution <= 2048:
            raise InputError(f"--resolution: expected 16 to 2048, got {self.resolution}")


def bench_synth(config: BenchSynthConfig, echo: Callable[[str], object] = lambda line: None) -> dict:
    """Make samples in memory for ``config.seconds`` and return (and echo) the rate.

    Raises:
        InputError: ``--device cuda`` without a CUDA device.
    """
    import torch

    from mould.datasets import raster_kernel
    from mould.datasets.synth_folder import generation_speed
    from mould.datasets.synthetic import SynthConfig

    if config.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device on this machine")
    batch = config.batch or (128 if config.device == "cuda" else 1)
    speed = generation_speed(SynthConfig(resolution=config.resolution), device=config.device,
                             seconds=config.seconds, batch=batch, workers=config.workers)  # fmt: skip
    machine = torch.cuda.get_device_name() if config.device == "cuda" else describe_machine()
    # Which z-buffer rendered: the figure depends on it (raster_kernel: ~7x faster on a CPU).
    zbuffer = "compiled" if config.device == "cpu" and raster_kernel.available() else "torch"
    figures = {
        "device": config.device,
        "machine": machine,
        "cores": os.cpu_count(),
        "workers": config.workers,
        "batch": batch,
        "resolution": config.resolution,
        "samples": speed.samples,
        "seconds": round(speed.seconds, 2),
        "samples_per_second": round(speed.samples_per_second, 2),
        "samples_per_cpu_second": round(speed.samples / speed.cpu_seconds, 2) if speed.cpu_seconds else None,
        "render_seconds": round(speed.render_seconds, 2),
        "zbuffer": zbuffer,
    }
    busy = (
        f", batch {batch}, device busy {speed.render_seconds / max(speed.seconds, 1e-9):.0%}" if batch > 1 else ""
    )
    echo(
        f"mould bench synth: {speed.samples} samples in {speed.seconds:.1f} s = {speed.samples_per_second:.1f} "
        f"samples/s ({figures['samples_per_cpu_second']} per CPU-second) at {config.resolution}², "
        f"{config.device}, {config.workers} workers{busy}, {zbuffer} z-buffer; {machine}"
    )
    if config.json is not None:
        config.json.write_text(json.dumps(figures, indent=1))
    return figures

"""The options of ``mould eval`` (free of torch: the command line reads its defaults here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mould.checks import check_option
from mould.devices import DEVICES, Device
from mould.errors import InputError
from mould.limits import LIMITS
from mould.recon.mesh import MESHERS, Mesher


@dataclass(frozen=True)
class EvalConfig:
    """Options of ``mould eval``."""

    checkpoint: Path | None
    """A ``.safetensors`` checkpoint, a run folder (its latest checkpoint), or None (the shipped model)."""
    data: Path
    """A folder of samples (``mould synth`` or any :func:`~mould.datasets.samples.write_sample` writer)."""
    out: Path
    """The report folder; nothing is written outside it."""
    mesher: Mesher = "poisson"
    """How moulds become meshes for the mesh scores."""
    limit: int | None = None
    """Score only the first N samples (sorted by name); None: all."""
    meshes: bool = True
    """Compute the mesh scores (about 2 s a sample with Poisson); False: depth and silhouette only."""
    device: Device = "auto"
    """``auto`` picks CUDA when available."""
    batch_size: int = 8
    """Samples per forward pass."""
    mesh_samples: int = 100_000
    """Surface points per mesh for the mesh scores (volume IoU draws twice as many); fewer is faster:
    at 100,000 a sample costs ~9 s on 2 cores, mostly in the volume IoU."""

    def __post_init__(self) -> None:
        if self.mesher not in MESHERS:
            raise InputError(f"--mesher: expected one of {', '.join(MESHERS)}, got {self.mesher}")
        check_option("--limit", self.limit, 1)
        check_option("--batch-size", self.batch_size, 1, 4096)
        check_option("--mesh-samples", self.mesh_samples, 1000, LIMITS.metric_samples // 2)  # IoU draws twice
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"--out: {self.out} is a file, not a folder")
        if self.device not in DEVICES:
            raise InputError(f"--device: expected auto, cpu or cuda, got {self.device}")

"""Real human bodies from ``anny`` (NAVER's MakeHuman-based parametric model), in the toolkit's world frame.

anny gives vertices in metres, z up, the body facing -y. The toolkit's world frame is glTF's: +Y up, the
person facing +Z. ``_ANNY_TO_WORLD`` turns one into the other: (x, y, z) -> (x, z, -y).

Building the model takes ~35-60 s the first time in a process (anny caches data on disk after that),
so :func:`anny_model` builds it once per process.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
"""anny's phenotype parameters, each in [0, 1] (0.5 is the average adult)."""

_ANNY_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


@functools.lru_cache(maxsize=1)
def anny_model():
    """The anny full-body model (13,718 vertices, 104 bones), built once per process, float32, CPU."""
    os.environ.setdefault("WARP_QUIET", "1")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # NVIDIA Warp prints banners on import
            import anny
            import warp

            warp.config.quiet = True
            _init_warp_without_driver_warning(warp)
            model = anny.Anny()
    except ImportError as error:
        raise ImportError("anny bodies need the 'anny' package: pip install anny") from error
    return model


_NO_DRIVER = "Could not find or load the NVIDIA CUDA driver"


def _init_warp_without_driver_warning(warp) -> None:
    """Initialise NVIDIA Warp now, dropping the one line it writes when no CUDA driver is found (anny runs
    on the CPU here). Warp writes it from C (``fprintf``), which no Python redirection reaches, so the
    process's stderr is captured for the call; any other output is passed on unchanged."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            warp.init()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    kept = [line for line in text.splitlines(keepends=True) if _NO_DRIVER not in line]
    if kept:
        sys.stderr.write("".join(kept))


def anny_faces() -> np.ndarray:
    """(27420, 3) int64 triangles of the anny body (watertight)."""
    return anny_model().get_triangular_faces().cpu().numpy().astype(np.int64)


def anny_bodies(phenotypes: dict[str, np.ndarray] | None = None, pose=None, batch: int = 1) -> np.ndarray:
    """Posed anny bodies in the world frame (+Y up, facing +Z), feet on y = 0, centred on x = z = 0.

    Args:
        phenotypes: name -> (B,) values in [0, 1] (see :data:`PHENOTYPES`); missing ones are 0.5.
        pose: anny pose parameters, (B, 104, 4, 4) delta transforms or a dict of bone name -> (B, 4, 4);
            None is anny's rest pose.
        batch: B when neither ``phenotypes`` nor ``pose`` sets it.

    Returns:
        (B, 13718, 3) float64 vertices, metres.
    """
    return posed_bodies(phenotypes, pose, batch).vertices


@dataclass(frozen=True)
class PosedBodies:
    """Posed anny bodies and their bones, world frame (+Y up, facing +Z), feet on y = 0.

    Attributes:
        vertices: (B, 13718, 3) float64, metres.
        bone_heads: (B, 104, 3) float64, metres, the head (joint) of each bone of ``anny_model().bone_labels``,
            moved with the vertices.
    """

    vertices: np.ndarray
    bone_heads: np.ndarray


def posed_bodies(phenotypes: dict[str, np.ndarray] | None = None, pose=None, batch: int = 1) -> PosedBodies:
    """Like :func:`anny_bodies`, with the bones' heads too (for pose checks and garment building)."""
    import torch

    model = anny_model()
    kwargs = {}
    if phenotypes:
        unknown = set(phenotypes) - set(PHENOTYPES)
        if unknown:
            raise ValueError(f"phenotypes: unknown names {sorted(unknown)}; expected some of {PHENOTYPES}")
        kwargs = {k: torch.as_tensor(np.atleast_1d(v), dtype=torch.float64) for k, v in phenotypes.items()}
        batch = len(next(iter(kwargs.values())))
    with torch.no_grad():
        out = model(pose_parameters=pose, phenotype_kwargs=kwargs or {"gender": torch.full((batch,), 0.5)})
    vertices = out["vertices"].cpu().numpy().astype(np.float64) @ _ANNY_TO_WORLD.T
    heads = out["bone_poses"][..., :3, 3].cpu().numpy().astype(np.float64) @ _ANNY_TO_WORLD.T
    low = vertices.min(axis=1, keepdims=True)
    high = vertices.max(axis=1, keepdims=True)
    offset = np.concatenate([(low + high)[..., :1] / 2, low[..., 1:2], (low + high)[..., 2:] / 2], axis=-1)
    return PosedBodies(vertices=vertices - offset, bone_heads=heads - offset)


def anny_body(**phenotypes: float) -> tuple[np.ndarray, np.ndarray]:
    """One body in its rest pose: ``(vertices (13718, 3) float64, faces (27420, 3) int64)``, world frame."""
    return anny_bodies({k: np.array([v]) for k, v in phenotypes.items()} or None)[0], anny_faces()

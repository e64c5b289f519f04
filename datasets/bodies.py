"""Real human bodies from ``anny`` (NAVER's MakeHuman-based parametric model), in the toolkit's world frame.

anny gives vertices in metres, z up, the body facing -y. The toolkit's world frame is glTF's: +Y up, the
person facing +Z. ``_ANNY_TO_WORLD`` turns one into the other: (x, y, z) -> (x, z, -y).

Bodies are shaped and posed in torch from the body bank (:mod:`mould.datasets.bank`,
:mod:`mould.datasets.posing`), which needs no anny at run time. anny itself (:func:`anny_model`, ~35-60 s to
build the first time in a process) is only needed to make the bank and to cross-check it.
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


def body_bank():
    """The body bank (:func:`mould.datasets.bank.body_bank`): anny's model as plain tensors, loaded once."""
    from mould.datasets.bank import body_bank as load

    return load()


def anny_faces() -> np.ndarray:
    """(27420, 3) int64 triangles of the anny body (watertight), from the body bank."""
    return body_bank().faces.numpy().astype(np.int64)


def anny_bodies(phenotypes: dict[str, np.ndarray] | None = None, rotations=None, batch: int = 1) -> np.ndarray:
    """Posed anny bodies in the world frame (+Y up, facing +Z), feet on y = 0, centred on x = z = 0.

    Args:
        phenotypes: name -> (B,) values in [0, 1] (see :data:`PHENOTYPES`); missing ones are 0.5.
        rotations: (B, J, 3, 3) float local-ref rotations per bone of ``body_bank().bone_labels``
            (:func:`mould.datasets.poses.pose_deltas`); None is the rest pose.
        batch: B when neither ``phenotypes`` nor ``rotations`` sets it.

    Returns:
        (B, 13718, 3) float64 vertices, metres.
    """
    return posed_bodies(phenotypes, rotations, batch).vertices


@dataclass(frozen=True)
class PosedBodies:
    """Posed anny bodies and their bones, world frame (+Y up, facing +Z), feet on y = 0.

    Attributes:
        vertices: (B, 13718, 3) float64, metres.
        bone_heads: (B, 104, 3) float64, metres, the head (joint) of each bone of ``body_bank().bone_labels``,
            moved with the vertices.
    """

    vertices: np.ndarray
    bone_heads: np.ndarray


def phenotype_tensor(phenotypes: dict[str, np.ndarray] | None, batch: int = 1):
    """(B, 6) float32 torch tensor of phenotype values in :data:`PHENOTYPES` order (missing ones 0.5)."""
    import torch

    phenotypes = phenotypes or {}
    unknown = set(phenotypes) - set(PHENOTYPES)
    if unknown:
        raise ValueError(f"phenotypes: unknown names {sorted(unknown)}; expected some of {PHENOTYPES}")
    if phenotypes:
        batch = len(np.atleast_1d(next(iter(phenotypes.values()))))
    columns = [np.broadcast_to(np.atleast_1d(phenotypes.get(name, 0.5)), (batch,)) for name in PHENOTYPES]
    return torch.as_tensor(np.stack(columns, axis=1), dtype=torch.float32)


def posed_bodies(phenotypes: dict[str, np.ndarray] | None = None, rotations=None, batch: int = 1) -> PosedBodies:
    """Like :func:`anny_bodies`, with the bones' heads too (for pose checks and garment building)."""
    import torch
    from mould.datasets.posing import pose_bodies

    bank = body_bank()
    if rotations is not None:
        batch = len(rotations)
    values = phenotype_tensor(phenotypes, batch)
    if rotations is None:
        rotations = torch.eye(3).expand(len(values), len(bank.bone_labels), 3, 3)
    rotations = torch.as_tensor(np.asarray(rotations), dtype=torch.float32)
    if rotations.shape != (len(values), len(bank.bone_labels), 3, 3):
        raise ValueError(
            f"rotations: expected ({len(values)}, {len(bank.bone_labels)}, 3, 3), got {tuple(rotations.shape)}"
        )
    with torch.no_grad():
        posed = pose_bodies(bank, values, rotations)
        vertices, heads = anny_to_world(posed.vertices, posed.heads)
    return PosedBodies(vertices=vertices.double().numpy(), bone_heads=heads.double().numpy())


def anny_to_world(vertices, heads):
    """Turn posed bodies from anny's frame into the world frame, feet on y = 0, centred on x = z = 0.

    Args:
        vertices: (B, V, 3) torch tensor, anny frame (z up, facing -y), metres.
        heads: (B, J, 3) torch tensor, the same bodies' bone heads.

    Returns:
        (vertices, heads) in the world frame (+Y up, facing +Z), same dtype and device.
    """
    import torch

    world = vertices[..., [0, 2, 1]] * vertices.new_tensor([1.0, 1.0, -1.0])  # _ANNY_TO_WORLD, exactly
    world_heads = heads[..., [0, 2, 1]] * heads.new_tensor([1.0, 1.0, -1.0])
    low, high = world.amin(dim=1, keepdim=True), world.amax(dim=1, keepdim=True)
    offset = torch.cat([(low + high)[..., :1] / 2, low[..., 1:2], (low + high)[..., 2:] / 2], dim=-1)
    return world - offset, world_heads - offset


def anny_body(**phenotypes: float) -> tuple[np.ndarray, np.ndarray]:
    """One body in its rest pose: ``(vertices (13718, 3) float64, faces (27420, 3) int64)``, world frame."""
    return anny_bodies({k: np.array([v]) for k, v in phenotypes.items()} or None)[0], anny_faces()

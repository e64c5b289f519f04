"""The one training record every dataset yields, so training code never knows where data came from.

A record is a ``dict[str, torch.Tensor]`` (default-collatable into batches):

================== ================ ===========================================================
key                shape, dtype     meaning
================== ================ ===========================================================
``image``          (3, N, N) f32    RGB crop in [0, 1]
``visible``        (1, N, N) f32    visible depth, camera-space z, metres; 0 outside the mask
``hidden``         (1, N, N) f32    hidden depth, metres; 0 outside the mask
``mask``           (1, N, N) f32    1 on the person, 0 elsewhere
``visible_normals`` (3, N, N) f32   unit normals, camera frame, out of the body; 0 where unknown
``hidden_normals`` (3, N, N) f32    the same for the hidden surface
``has_normals``    () bool          False when the dataset has no ground-truth normals
``back``           (3, N, N) f32    colour of the hidden surface in [0, 1] (``Mould.back_image``); 0 where
                                    unknown
``has_back``       () bool          False when the dataset has no back colours
``intrinsics``     (3,) f32         focal (px; orthographic px/m), cx, cy (px)
``perspective``    () bool          True for a perspective camera, False for orthographic
``cam_to_world``   (4, 4) f32       rigid camera-to-world transform
================== ================ ===========================================================
"""

from __future__ import annotations

import numpy as np
import torch

from mould.camera import Camera
from mould.container import Mould

RECORD_KEYS = (
    "image",
    "visible",
    "hidden",
    "mask",
    "visible_normals",
    "hidden_normals",
    "has_normals",
    "back",
    "has_back",
    "intrinsics",
    "perspective",
    "cam_to_world",
)


def record_shapes(resolution: int) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Key -> (shape, dtype) of a record of crop side ``resolution`` (the table of the module docstring)."""
    n = resolution
    maps = {"image": 3, "visible": 1, "hidden": 1, "mask": 1, "visible_normals": 3, "hidden_normals": 3, "back": 3}
    shapes = {key: ((channels, n, n), torch.float32) for key, channels in maps.items()}
    flags = {key: ((), torch.bool) for key in ("has_normals", "has_back", "perspective")}
    return {**shapes, **flags, "intrinsics": ((3,), torch.float32), "cam_to_world": ((4, 4), torch.float32)}


def check_record(record: dict[str, torch.Tensor], resolution: int) -> None:
    """Check that a record has exactly :data:`RECORD_KEYS` with the shapes and dtypes of ``resolution``,
    so that records batch together (``default_collate`` stacks them).

    Raises:
        ValueError: naming the first key that differs.
    """
    extra = sorted(set(record) - set(RECORD_KEYS) - {"skipped"})
    missing = sorted(set(RECORD_KEYS) - set(record))
    if extra or missing:
        raise ValueError(f"record keys: missing {missing}, unexpected {extra}")
    for key, (shape, dtype) in record_shapes(resolution).items():
        value = record[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"record {key}: expected a tensor, got {type(value).__name__}")
        if tuple(value.shape) != shape or value.dtype != dtype:
            raise ValueError(
                f"record {key}: expected {shape} {dtype} for {resolution}x{resolution} crops, "
                f"got {tuple(value.shape)} {value.dtype}"
            )


def mould_to_record(mould: Mould, image: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """A training record from a mould and its RGB crop.

    Args:
        mould: the ground-truth mould (its normals are used when present).
        image: (N, N, 3) uint8 RGB crop; defaults to ``mould.image``.
    """
    image = mould.image if image is None else image
    if image is None:
        raise ValueError("image: the mould holds no image and none was given")
    n = mould.resolution
    if image.shape != (n, n, 3) or image.dtype != np.uint8:
        raise ValueError(f"image: expected ({n}, {n}, 3) uint8, got {image.shape} {image.dtype}")
    mask = mould.mask
    zeros = np.zeros((n, n, 3), np.float32)
    camera = mould.camera
    return {
        "image": _colour_tensor(image),
        "visible": torch.from_numpy(np.where(mask, mould.visible, 0).astype(np.float32))[None],
        "hidden": torch.from_numpy(np.where(mask, mould.hidden, 0).astype(np.float32))[None],
        "mask": torch.from_numpy(mask.astype(np.float32))[None],
        "visible_normals": torch.from_numpy(
            np.ascontiguousarray((mould.visible_normals if mould.has_normals else zeros).transpose(2, 0, 1))
        ),
        "hidden_normals": torch.from_numpy(
            np.ascontiguousarray((mould.hidden_normals if mould.has_normals else zeros).transpose(2, 0, 1))
        ),
        "has_normals": torch.tensor(mould.has_normals),
        "back": _colour_tensor(mould.back_image if mould.back_image is not None else zeros.astype(np.uint8)),
        "has_back": torch.tensor(mould.back_image is not None),
        "intrinsics": torch.tensor([camera.focal, camera.cx, camera.cy], dtype=torch.float32),
        "perspective": torch.tensor(camera.kind == "perspective"),
        "cam_to_world": torch.from_numpy(camera.cam_to_world.astype(np.float32)),
    }


def _colour_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(N, N, 3) uint8 -> (3, N, N) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float() / 255.0


def _colour_pixels(values: np.ndarray) -> np.ndarray:
    """(3, N, N) float in [0, 1] -> (N, N, 3) uint8 (inverse of :func:`_colour_tensor`)."""
    return (np.clip(values.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)


def record_camera(record: dict[str, torch.Tensor], index: int | None = None) -> Camera:
    """The :class:`Camera` of a record, or of item ``index`` of a batch of records."""

    def item(key: str) -> np.ndarray:
        value = record[key] if index is None else record[key][index]
        return value.detach().cpu().numpy()

    focal, cx, cy = (float(x) for x in item("intrinsics"))
    resolution = int(record["visible"].shape[-1])
    kind = "perspective" if bool(item("perspective")) else "orthographic"
    matrix = item("cam_to_world").astype(np.float64)
    # float32 storage loses orthonormality at ~1e-7; re-orthonormalise before the Camera's rigidity check.
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    matrix[:3, :3] = u @ vt
    return Camera(kind, resolution, focal, cx, cy, matrix)


def record_to_mould(record: dict[str, torch.Tensor], index: int | None = None) -> Mould:
    """The :class:`Mould` of a record (inverse of :func:`mould_to_record` up to float32 round-off)."""

    def item(key: str) -> np.ndarray:
        value = record[key] if index is None else record[key][index]
        return value.detach().cpu().numpy()

    mask = item("mask")[0] > 0.5
    normals = {}
    if bool(item("has_normals")):
        normals = {
            "visible_normals": item("visible_normals").transpose(1, 2, 0),
            "hidden_normals": item("hidden_normals").transpose(1, 2, 0),
        }
    extra = {"back_image": _colour_pixels(item("back"))} if "back" in record and bool(item("has_back")) else {}
    return Mould(
        visible=np.where(mask, item("visible")[0], 0),
        hidden=np.where(mask, item("hidden")[0], 0),
        mask=mask,
        camera=record_camera(record, index),
        image=_colour_pixels(item("image")),
        **normals,
        **extra,
    )

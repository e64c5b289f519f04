"""The :class:`Mould`: a person as two depth maps seen from one camera, and its ``.npz`` file format.

File schema (version 1), one ``.npz`` without pickles:

============================ ================= =====================================================
key                          shape, dtype      meaning
============================ ================= =====================================================
``schema_version``           () int64          1
``visible``                  (H, W) float32    camera-space z of the first surface hit, metres; 0 outside
                                               the mask
``hidden``                   (H, W) float32    camera-space z of the last surface hit, metres; 0 outside
``mask``                     (H, W) bool       pixels whose ray hits the person
``camera_kind``              () str            ``perspective`` or ``orthographic``
``camera_intrinsics``        (3,) float64      focal (px; orthographic: px/m), cx, cy (px)
``camera_cam_to_world``      (4, 4) float64    rigid camera-to-world transform (OpenCV camera axes)
``image``       (optional)   (H, W, 3) uint8   the RGB crop the mould was seen in
``visible_normals`` (opt.)   (H, W, 3) float32 unit surface normals at the visible hits, camera frame,
                                               pointing out of the body (towards the camera)
``hidden_normals``  (opt.)   (H, W, 3) float32 the same at the hidden hits (away from the camera)
``back_image``  (optional)   (H, W, 3) uint8   the colour of the hidden surface at each pixel (for
                                               synthetic data: its albedo under the photo's mean
                                               illumination); 0 outside the mask
============================ ================= =====================================================

H = W = the camera's resolution.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.camera import Camera
from mould.checks import check_array
from mould.errors import InputError
from mould.files import write_atomic
from mould.npz import ArrayHeader, NpzArchive, write_npz
from mould.tolerances import DEFAULT_TOLERANCES

SCHEMA_VERSION = 1
_OPTIONAL = ("image", "visible_normals", "hidden_normals", "back_image")
_REQUIRED = (
    "schema_version",
    "visible",
    "hidden",
    "mask",
    "camera_kind",
    "camera_intrinsics",
    "camera_cam_to_world",
)


def _check_headers(headers: dict[str, ArrayHeader], resolution: int | None) -> None:
    """Check the declared shapes of a mould file's arrays against the schema, before reading any.

    Raises:
        KeyError: a required array is missing. ValueError: a shape is not the schema's, the crop side is
            over ``Tolerances.max_resolution`` or is not ``resolution``.
    """
    for name in _REQUIRED:
        if name not in headers:
            raise KeyError(name)
    side = headers["visible"].shape
    if len(side) != 2 or side[0] != side[1]:
        raise ValueError(f"visible: expected a square (N, N) map, got {side}")
    n = side[0]
    if n > DEFAULT_TOLERANCES.max_resolution:
        raise ValueError(f"visible: a {n}x{n} map, over the largest crop side {DEFAULT_TOLERANCES.max_resolution}")
    if resolution is not None and n != resolution:
        raise ValueError(f"a {n}x{n} mould where {resolution}x{resolution} is expected")
    expected = {
        "schema_version": (), "hidden": (n, n), "mask": (n, n), "camera_kind": (), "camera_intrinsics": (3,),
        "camera_cam_to_world": (4, 4), **{name: (n, n, 3) for name in _OPTIONAL},
    }  # fmt: skip
    for name, shape in expected.items():
        if name in headers and headers[name].shape != shape:
            raise ValueError(f"{name}: expected {shape}, got {headers[name].shape} {headers[name].dtype}")


@dataclass(frozen=True, eq=False)
class Mould:
    """The two halves of a mould: visible (front) and hidden (back) depth maps, with their camera.

    Attributes:
        visible: (H, W) float32, camera-space z of the nearest surface, metres; 0 outside ``mask``.
        hidden: (H, W) float32, camera-space z of the farthest surface, metres; 0 outside ``mask``.
        mask: (H, W) bool, True where the pixel's ray hits the person.
        camera: the camera, H = W = ``camera.resolution``.
        image: optional (H, W, 3) uint8 RGB crop.
        visible_normals, hidden_normals: optional (H, W, 3) float32 unit normals, camera frame, pointing
            out of the body; zero outside ``mask``.
        back_image: optional (H, W, 3) uint8 colour of the hidden surface seen through each pixel (what
            texturing the back needs; the generator's definition is in :mod:`mould.datasets.render`).

    A mould validates itself on construction and raises ``ValueError`` naming the field.
    """

    visible: np.ndarray
    hidden: np.ndarray
    mask: np.ndarray
    camera: Camera
    image: np.ndarray | None = None
    visible_normals: np.ndarray | None = None
    hidden_normals: np.ndarray | None = None
    back_image: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.camera, Camera):
            raise ValueError(f"camera: expected a Camera, got {type(self.camera).__name__}")
        n = self.camera.resolution
        check_array("mask", self.mask, (n, n), "bool")
        for name in ("visible", "hidden"):
            value = check_array(name, self.__getattribute__(name), (n, n), "float")
            if value.dtype != np.float32:
                object.__setattr__(self, name, value.astype(np.float32))
            inside = self.__getattribute__(name)[self.mask]
            if not np.all(np.isfinite(inside)):
                raise ValueError(f"{name}: NaN or infinite depth inside the mask")
            if inside.size and inside.min() <= 0:
                raise ValueError(f"{name}: depth must be > 0 inside the mask, found {inside.min():.4g}")
        if np.any(self.hidden[self.mask] < self.visible[self.mask] - DEFAULT_TOLERANCES.order_slack):
            worst = float(np.max(self.visible[self.mask] - self.hidden[self.mask]))
            raise ValueError(f"hidden: must be >= visible inside the mask, found hidden {worst:.4g} m in front")
        for name in ("image", "back_image"):
            if self.__getattribute__(name) is not None:
                check_array(name, self.__getattribute__(name), (n, n, 3), np.uint8)
        for name in ("visible_normals", "hidden_normals"):
            value = self.__getattribute__(name)
            if value is not None:
                # NaN normals would pass silently to a mesher, which fails far from the file's name.
                check_array(name, value, (n, n, 3), "float", finite=True)
                if value.dtype != np.float32:
                    object.__setattr__(self, name, value.astype(np.float32))

    @property
    def resolution(self) -> int:
        return self.camera.resolution

    @property
    def has_normals(self) -> bool:
        return self.visible_normals is not None and self.hidden_normals is not None

    def replace(self, **changes) -> Mould:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- files --------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, compression: int = 6) -> Path:
        """Write the mould to ``path`` (``.npz``) atomically: a temporary file renamed into place.

        Args:
            compression: zlib level, 0-9 (6, ``numpy.savez_compressed``'s; the generator writes 1: half the
                time for ~10 % more bytes).
        """
        path = Path(path)
        arrays: dict[str, np.ndarray] = {
            "schema_version": np.array(SCHEMA_VERSION, dtype=np.int64),
            "visible": np.where(self.mask, self.visible, 0).astype(np.float32),
            "hidden": np.where(self.mask, self.hidden, 0).astype(np.float32),
            "mask": self.mask,
            "camera_kind": np.array(self.camera.kind),
            "camera_intrinsics": np.array([self.camera.focal, self.camera.cx, self.camera.cy]),
            "camera_cam_to_world": np.asarray(self.camera.cam_to_world, dtype=np.float64),
        }
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        write_atomic(path, lambda handle: write_npz(handle, arrays, compression))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, resolution: int | None = None) -> Mould:
        """Read and validate a mould file; any problem raises :class:`InputError` naming the file.

        Every array's declared shape is checked against the schema from its header before any array is
        read (:class:`mould.npz.NpzArchive`), so a file claiming a huge array costs nothing.

        Args:
            resolution: the crop side N the caller needs, or None for any up to
                ``Tolerances.max_resolution``; a mould of another side is refused from its header.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise InputError(f"{path}: the file is empty")
        with NpzArchive(path) as archive:
            try:
                _check_headers(archive.headers, resolution)
            except (KeyError, ValueError) as error:
                message = f"missing key {error}" if isinstance(error, KeyError) else str(error)
                raise InputError(f"{path}: invalid mould: {message}") from None
            arrays = archive.read_all()
        try:
            return cls._from_arrays(arrays)
        except (KeyError, ValueError, TypeError) as error:
            message = f"missing key {error}" if isinstance(error, KeyError) else str(error)
            raise InputError(f"{path}: invalid mould: {message}") from None

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> Mould:
        version = int(arrays["schema_version"])
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version} is not supported (this toolkit reads {SCHEMA_VERSION})")
        intrinsics = check_array("camera_intrinsics", arrays["camera_intrinsics"], (3,), "float")
        visible = arrays["visible"]
        if visible.ndim != 2 or visible.shape[0] != visible.shape[1]:
            raise ValueError(f"visible: expected a square (N, N) map, got {visible.shape}")
        camera = Camera(
            kind=str(arrays["camera_kind"]),
            resolution=visible.shape[0],
            focal=float(intrinsics[0]),
            cx=float(intrinsics[1]),
            cy=float(intrinsics[2]),
            cam_to_world=arrays["camera_cam_to_world"],
        )
        optional = {name: arrays[name] for name in _OPTIONAL if name in arrays}
        return cls(visible=visible, hidden=arrays["hidden"], mask=arrays["mask"], camera=camera, **optional)

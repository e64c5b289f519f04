"""Cameras of a square N x N crop, and the one framing rule shared by data generation and reconstruction.

Conventions (stated once in the README):
- units are metres;
- the camera frame is OpenCV's: x right, y down, z forward; depth is the camera-space z;
- pixel (u, v) = (column, row) has its centre at integer coordinates, so a crop of side N spans
  [-0.5, N - 0.5] in both axes;
- ``cam_to_world`` is a rigid 4 x 4 matrix taking camera-frame points to the world frame.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mould.checks import check_array

CameraKind = Literal["perspective", "orthographic"]
CAMERA_KINDS: tuple[CameraKind, ...] = ("perspective", "orthographic")


WORLD_UP = np.array([0.0, 1.0, 0.0])
"""+Y, the world's up axis (glTF)."""


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """Camera-to-world matrix of a camera at ``eye`` looking at ``target``, OpenCV axes.

    Args:
        eye: (3,) float, camera centre in the world frame, metres.
        target: (3,) float, a point on the optical axis, world frame.
        up: (3,) float, world up; the camera's y axis (down) is its opposite, projected.

    Returns:
        (4, 4) float64 rigid matrix whose columns are the camera's x (right), y (down), z (forward)
        axes and its centre, in world coordinates.
    """
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(forward)
    if norm == 0:
        raise ValueError("look_at: eye and target coincide")
    forward /= norm
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: the viewing direction is parallel to up")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2], matrix[:3, 3] = right, down, forward, eye
    return matrix


def view_direction(yaw_deg: float = 0.0, elevation_deg: float = 0.0) -> np.ndarray:
    """Unit vector from the target towards the camera, world frame (+Y up).

    Yaw 0 and elevation 0 put the camera on +Z looking towards -Z, facing a person who faces +Z (glTF).
    Positive yaw turns the camera counter-clockwise about +Y seen from above; positive elevation raises it.
    """
    yaw, elev = math.radians(yaw_deg), math.radians(elevation_deg)
    return np.array([math.sin(yaw) * math.cos(elev), math.sin(elev), math.cos(yaw) * math.cos(elev)])


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole-perspective or orthographic camera for a square crop of ``resolution`` pixels.

    Attributes:
        kind: ``"perspective"`` or ``"orthographic"``.
        resolution: N, the crop's side in pixels.
        focal: perspective: focal length in pixels; orthographic: pixels per metre.
        cx, cy: principal point in pixels (pixel centres at integers).
        cam_to_world: (4, 4) float64 rigid transform, camera frame to world frame.
    """

    kind: CameraKind
    resolution: int
    focal: float
    cx: float
    cy: float
    cam_to_world: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in CAMERA_KINDS:
            raise ValueError(f"camera kind: expected one of {CAMERA_KINDS}, got {self.kind!r}")
        if (
            not isinstance(self.resolution, (int, np.integer))
            or isinstance(self.resolution, (bool, np.bool_))
            or self.resolution < 1
        ):
            raise ValueError(f"camera resolution: expected a positive integer, got {self.resolution!r}")
        object.__setattr__(self, "resolution", int(self.resolution))
        for name in ("focal", "cx", "cy"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"camera {name}: expected a finite number, got {value}")
            object.__setattr__(self, name, value)
        if self.focal <= 0:
            raise ValueError(f"camera focal: expected > 0, got {self.focal}")
        matrix = check_array("camera cam_to_world", np.asarray(self.cam_to_world), (4, 4), "float", finite=True)
        rotation = matrix[:3, :3]
        if not (
            np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5)
            and abs(np.linalg.det(rotation) - 1) < 1e-5
            and np.allclose(matrix[3], [0, 0, 0, 1])
        ):
            raise ValueError("camera cam_to_world: expected a rigid transform (rotation and translation)")
        matrix = matrix.astype(np.float64, copy=True)
        matrix.flags.writeable = False
        object.__setattr__(self, "cam_to_world", matrix)

    # -- frames -------------------------------------------------------------------------------------------
    @property
    def world_to_cam(self) -> np.ndarray:
        """(4, 4) float64, the inverse of ``cam_to_world``."""
        inverse = np.eye(4)
        rotation = self.cam_to_world[:3, :3]
        inverse[:3, :3] = rotation.T
        inverse[:3, 3] = -rotation.T @ self.cam_to_world[:3, 3]
        return inverse

    @property
    def centre(self) -> np.ndarray:
        """(3,) float64, the camera centre in the world frame (orthographic: the image plane's origin)."""
        return self.cam_to_world[:3, 3].copy()

    @property
    def intrinsics(self) -> np.ndarray:
        """(3, 3) float64 matrix K = [[f, 0, cx], [0, f, cy], [0, 0, 1]] (orthographic: f in px/m)."""
        return np.array([[self.focal, 0, self.cx], [0, self.focal, self.cy], [0, 0, 1.0]])

    @property
    def pixel_size(self) -> float:
        """Orthographic: a pixel's width in metres. Perspective: a pixel's width at depth 1 m."""
        return 1.0 / self.focal

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World frame (..., 3) -> camera frame (..., 3), metres."""
        matrix = self.world_to_cam
        return points @ matrix[:3, :3].T + matrix[:3, 3]

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Camera frame (..., 3) -> world frame (..., 3), metres."""
        return points @ self.cam_to_world[:3, :3].T + self.cam_to_world[:3, 3]

    # -- projection ---------------------------------------------------------------------------------------
    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to pixels.

        Args:
            points: (M, 3) float, world frame, metres.

        Returns:
            uv: (M, 2) float64 pixel coordinates (column, row); meaningless where depth <= 0 (perspective).
            depth: (M,) float64 camera-space z, metres.
        """
        cam = self.to_camera(np.asarray(points, dtype=np.float64))
        z = cam[..., 2]
        if self.kind == "perspective":
            with np.errstate(divide="ignore", invalid="ignore"):
                xy = cam[..., :2] / z[..., None]
        else:
            xy = cam[..., :2]
        uv = xy * self.focal + np.array([self.cx, self.cy])
        return uv, z

    def backproject(self, u: np.ndarray, v: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Camera-frame points at pixel coordinates ``(u, v)`` and camera-space ``depth``.

        Args:
            u, v: (...) float, pixel coordinates (column, row); broadcast against ``depth``.
            depth: (...) float, camera-space z, metres.

        Returns:
            (..., 3) float64 points in the camera frame, metres.
        """
        depth = np.asarray(depth, dtype=np.float64)
        x = (np.asarray(u, dtype=np.float64) - self.cx) / self.focal
        y = (np.asarray(v, dtype=np.float64) - self.cy) / self.focal
        if self.kind == "perspective":
            x, y = x * depth, y * depth
        x, y, depth = np.broadcast_arrays(x, y, depth)
        return np.stack([x, y, depth], axis=-1)

    def pixel_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centre coordinates ``u`` (column) and ``v`` (row), each (N, N) float64."""
        index = np.arange(self.resolution, dtype=np.float64)
        return np.meshgrid(index, index, indexing="xy")

    def rays(self) -> tuple[np.ndarray, np.ndarray]:
        """One ray per pixel centre, in the world frame.

        Returns:
            origins: (N, N, 3) float64, world frame; the camera centre (perspective) or points of the
                image plane z = 0 (orthographic).
            directions: (N, N, 3) float64, world frame, scaled so that their camera-space z is 1: the ray
                parameter t of a hit is then its camera-space depth.
        """
        u, v = self.pixel_grid()
        rotation = self.cam_to_world[:3, :3]
        if self.kind == "perspective":
            directions_cam = self.backproject(u, v, np.ones_like(u))
            origins = np.broadcast_to(self.cam_to_world[:3, 3], directions_cam.shape)
        else:
            directions_cam = np.broadcast_to(np.array([0.0, 0.0, 1.0]), u.shape + (3,))
            origins = self.to_world(self.backproject(u, v, np.zeros_like(u)))
        return np.ascontiguousarray(origins), directions_cam @ rotation.T

    def unit_rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit viewing directions through pixel coordinates, camera frame, into the scene.

        Args:
            u, v: (...) float, pixel coordinates (column, row).

        Returns:
            (..., 3) float32 unit vectors; (0, 0, 1) everywhere for an orthographic camera.
        """
        u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
        if self.kind == "orthographic":
            return np.broadcast_to(np.float32([0, 0, 1]), u.shape + (3,)).copy()
        d = self.backproject(u, v, 1.0)
        return (d / np.linalg.norm(d, axis=-1, keepdims=True)).astype(np.float32)

    @functools.cached_property
    def view_rays_camera(self) -> np.ndarray:
        """(N, N, 3) float32 unit viewing directions per pixel, camera frame, into the scene (cached)."""
        rays = self.unit_rays(*self.pixel_grid())
        rays.flags.writeable = False
        return rays

    # -- serialisation ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-ready description; :meth:`from_dict` inverts it exactly."""
        return {
            "kind": self.kind,
            "resolution": self.resolution,
            "focal": self.focal,
            "cx": self.cx,
            "cy": self.cy,
            "cam_to_world": self.cam_to_world.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Camera:
        return cls(
            kind=data["kind"],
            resolution=int(data["resolution"]),
            focal=float(data["focal"]),
            cx=float(data["cx"]),
            cy=float(data["cy"]),
            cam_to_world=np.asarray(data["cam_to_world"], dtype=np.float64),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.resolution == other.resolution
            and (self.focal, self.cx, self.cy) == (other.focal, other.cx, other.cy)
            and np.array_equal(self.cam_to_world, other.cam_to_world)
        )

    __hash__ = None  # type: ignore[assignment]

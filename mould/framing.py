"""Framing: the one rule for the square around a person, and the one geometry of a crop.

**The framing rule** (:func:`square_box`): the square holding the person's extent with a free margin on each
side. Data generation frames projected meshes with it (:func:`frame_points`), datasets of real frames and
the reconstruction of photos frame silhouettes with it, so a photo is cropped as the training crops were.

**The crop geometry** (:class:`CropWindow`): a crop of N x N pixels of a frame (a photo, a video frame).
Pixel centres sit at integer coordinates in both (the toolkit's convention), and the crop's centre
``(N - 1) / 2`` sits on the window's centre, so crop pixel ``j`` shows the frame at::

    u = window.u + (j - (N - 1) / 2) * window.side_u / N          (likewise v with side_v)

Everything derives from that line: the crop's camera (:meth:`CropWindow.camera`), the mapping of crop
coordinates back to the frame (:meth:`CropWindow.to_frame`), and the samplers (:func:`crop_image` for 8-bit
images, :func:`sample_frame` for any map), which read the frame at exactly those coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mould.camera import Camera, CameraKind, look_at, view_direction
from mould.checks import check_array


@dataclass(frozen=True)
class SquareBox:
    """A square region of an image plane: centre ``(u, v)`` and ``side``, in the plane's own units."""

    u: float
    v: float
    side: float


def square_box(u_min: float, u_max: float, v_min: float, v_max: float, *, margin: float = 0.1) -> SquareBox:
    """The square that holds the extent ``[u_min, u_max] x [v_min, v_max]`` with a margin on each side.

    This is the one framing rule of the toolkit (see the module docstring).

    Args:
        margin: free space on each side, as a fraction of the square's side (0.1 leaves the person
            80 % of the crop along its longer axis).
    """
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin: expected 0 <= margin < 0.5, got {margin}")
    extent = max(u_max - u_min, v_max - v_min)
    if extent <= 0:
        raise ValueError("square_box: the extent is empty")
    return SquareBox((u_min + u_max) / 2, (v_min + v_max) / 2, extent / (1 - 2 * margin))


DEFAULT_DISTANCE_FACTOR = 2.5
"""A perspective camera sits 2.5 x the figure's largest extent away (~4 m for 1.7 m): a ~25 degree view,
close to a photo taken from across a room."""


def frame_points(
    points: np.ndarray,
    resolution: int,
    *,
    kind: CameraKind = "perspective",
    yaw_deg: float = 0.0,
    elevation_deg: float = 0.0,
    distance: float | None = None,
    margin: float = 0.1,
    box_scale: float = 1.0,
    box_shift: tuple[float, float] = (0.0, 0.0),
) -> Camera:
    """A camera that looks at ``points`` from a direction and fits their projection in the crop.

    The camera looks at the centre of the points' bounding box from ``view_direction(yaw, elevation)``;
    the crop is then the :func:`square_box` of the projected points.

    Args:
        points: (M, 3) float, world frame (+Y up), metres; a mesh's vertices or its bounding-box corners.
        resolution: N, the crop's side in pixels.
        kind: perspective or orthographic.
        yaw_deg, elevation_deg: viewing direction, see :func:`~mould.camera.view_direction`.
        distance: perspective camera distance from the box centre, metres; default
            ``DEFAULT_DISTANCE_FACTOR`` x the box's largest extent.
        margin: see :func:`square_box`.
        box_scale: multiplies the square's side (> 1 zooms out): imperfect crops for training.
        box_shift: moves the square by this fraction of its side, (right, down).

    Returns:
        A :class:`~mould.camera.Camera` of side ``resolution``.
    """
    points = check_array("points", np.asarray(points, dtype=np.float64), (None, 3), "float", finite=True)
    if len(points) == 0:
        raise ValueError("points: expected at least one point")
    low, high = points.min(axis=0), points.max(axis=0)
    centre, extent = (low + high) / 2, float(np.max(high - low))
    if extent <= 0:
        raise ValueError("points: all points coincide")
    towards_camera = view_direction(yaw_deg, elevation_deg)
    if kind == "perspective":
        distance = DEFAULT_DISTANCE_FACTOR * extent if distance is None else float(distance)
    else:
        distance = extent + 1.0  # any distance that keeps the figure in front of the image plane
    up = np.array([0.0, 1.0, 0.0]) if abs(towards_camera[1]) < 0.999 else np.array([0.0, 0.0, -1.0])
    cam_to_world = look_at(centre + distance * towards_camera, centre, up)
    unit = Camera(kind, resolution, 1.0, 0.0, 0.0, cam_to_world)
    uv, depth = unit.project(points)
    if kind == "perspective" and np.any(depth <= 1e-6):
        raise ValueError(f"distance: {distance} m puts the camera inside the figure")
    box = square_box(uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max(), margin=margin)
    side = box.side * box_scale
    # The unit camera's image plane is the frame; a crop window on it gives the camera.
    window = CropWindow(box.u + box_shift[0] * side, box.v + box_shift[1] * side, side, side, resolution)
    return window.camera(1.0, 1.0, 0.0, 0.0, cam_to_world, kind=kind)


@dataclass(frozen=True)
class CropWindow:
    """Where an N x N crop lies in its frame: centre and sides in frame pixels (see the module docstring).

    The sides differ only for frames whose pixels are not square (``side_v / side_u = fy / fx``), so that
    the crop's own pixels are square.

    Attributes:
        u, v: the window's centre, frame pixels (centres at integers).
        side_u, side_v: its width and height, frame pixels.
        resolution: N, the crop's side in pixels.
    """

    u: float
    v: float
    side_u: float
    side_v: float
    resolution: int

    def __post_init__(self) -> None:
        if not (self.side_u > 0 and self.side_v > 0):
            raise ValueError(f"side: expected > 0 frame pixels, got {self.side_u} x {self.side_v}")
        if self.resolution < 1:
            raise ValueError(f"resolution: expected >= 1, got {self.resolution}")

    @classmethod
    def square(cls, box: SquareBox, resolution: int) -> CropWindow:
        """The window of a :class:`SquareBox` in a frame of square pixels."""
        return cls(box.u, box.v, box.side, box.side, resolution)

    @property
    def box(self) -> SquareBox:
        """The window as a :class:`SquareBox` (frame of square pixels)."""
        return SquareBox(self.u, self.v, self.side_u)

    def to_frame(self, j: np.ndarray | float, i: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Frame coordinates ``(u, v)`` of crop coordinates ``(j, i)`` = (column, row), any shape."""
        half = (self.resolution - 1) / 2
        n = self.resolution
        return self.u + (np.asarray(j) - half) * self.side_u / n, self.v + (np.asarray(i) - half) * self.side_v / n

    def from_frame(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Crop coordinates ``(j, i)`` of frame coordinates ``(u, v)`` (inverse of :meth:`to_frame`)."""
        half = (self.resolution - 1) / 2
        n = self.resolution
        return (np.asarray(u) - self.u) * n / self.side_u + half, (np.asarray(v) - self.v) * n / self.side_v + half

    def pixels(self) -> tuple[np.ndarray, np.ndarray]:
        """``(u, v)``: (N,) float64 frame coordinates of the crop's columns and rows."""
        index = np.arange(self.resolution, dtype=np.float64)
        return self.to_frame(index, index)

    def camera(
        self,
        fx: float,
        fy: float,
        cx: float,
        cy: float,
        cam_to_world: np.ndarray | None = None,
        *,
        kind: CameraKind = "perspective",
    ) -> Camera:
        """The crop's camera, from the frame's intrinsics (pixels; orthographic: pixels per metre).

        A frame point at ``u = fx x + cx`` lands on crop column ``(u - window.u) N / side_u + (N - 1) / 2``,
        so the crop has ``f = fx N / side_u`` and ``c = (cx - window.u) N / side_u + (N - 1) / 2``.

        Raises:
            ValueError: the window's pixels are not square for this camera (``fx / side_u != fy / side_v``).
        """
        n = self.resolution
        focal, focal_v = fx * n / self.side_u, fy * n / self.side_v
        if not np.isclose(focal, focal_v, rtol=1e-9):
            raise ValueError(f"window: crop pixels are not square ({focal} != {focal_v} pixels of focal)")
        centre_u, centre_v = self.from_frame(cx, cy)
        extrinsics = np.eye(4) if cam_to_world is None else cam_to_world
        return Camera(kind, n, focal, float(centre_u), float(centre_v), extrinsics)


def whole_image_box(height: int, width: int) -> SquareBox:
    """The square holding a whole image, centred: the image 'padded to a square'."""
    return SquareBox((width - 1) / 2, (height - 1) / 2, float(max(height, width)))


def crop_image(image: np.ndarray, window: CropWindow, *, fill: int = 0, nearest: bool = False) -> np.ndarray:
    """An 8-bit image (or a mask) sampled on a window's pixels; outside the image is ``fill``.

    Bilinear point sampling (no low-pass filter, as :func:`sample_frame` with ``order=1``), by Pillow.

    Args:
        image: (H, W, 3) uint8 or (H, W) uint8/bool.
        window: the crop (square pixels in the frame: ``side_u == side_v``).
        fill: value beyond the image.
        nearest: nearest-neighbour sampling (masks are always sampled so) instead of bilinear.

    Returns:
        (N, N, 3) uint8, or (N, N) of ``image``'s dtype.
    """
    from PIL import Image

    is_bool = image.dtype == np.bool_
    source = Image.fromarray(image.astype(np.uint8) * (255 if is_bool else 1))
    n = window.resolution
    # Pillow's EXTENT maps output pixel k's centre (k + 0.5) to x0 + (k + 0.5) * side / N in pixel-edge
    # coordinates, i.e. to the pixel-centre coordinate x0 - 0.5 + (k + 0.5) * side / N; matching
    # CropWindow.to_frame gives x0 = u - side / 2 + 0.5.
    x0, y0 = window.u - window.side_u / 2 + 0.5, window.v - window.side_v / 2 + 0.5
    resample = Image.Resampling.NEAREST if nearest or is_bool else Image.Resampling.BILINEAR
    fill_value = fill if source.mode == "L" else (fill, fill, fill)
    out = source.transform(
        (n, n), Image.Transform.EXTENT, (x0, y0, x0 + window.side_u, y0 + window.side_v), resample,
        fillcolor=fill_value,
    )  # fmt: skip
    array = np.asarray(out)
    return array >= 128 if is_bool else array


def sample_frame(frame: np.ndarray, window: CropWindow, *, order: int, fill: float = 0.0) -> np.ndarray:
    """Any map (image, depth, mask) sampled on a window's pixels.

    Args:
        frame: (H, W) or (H, W, C) array.
        window: the crop.
        order: 0 nearest (depth, masks: never blend across a silhouette), 1 bilinear (images).
        fill: value beyond the frame.

    Returns:
        (N, N) or (N, N, C) float64.
    """
    from scipy.ndimage import map_coordinates

    u, v = window.pixels()
    vv, uu = np.meshgrid(v, u, indexing="ij")
    coordinates = np.stack([vv.ravel(), uu.ravel()])
    n = window.resolution
    data = frame.astype(np.float64)
    if data.ndim == 2:
        return map_coordinates(data, coordinates, order=order, mode="constant", cval=fill).reshape(n, n)
    channels = [
        map_coordinates(data[..., c], coordinates, order=order, mode="constant", cval=fill).reshape(n, n)
        for c in range(data.shape[2])
    ]
    return np.stack(channels, axis=-1)

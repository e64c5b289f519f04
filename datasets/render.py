"""Rendering dressed scenes: framing, the mould and the image from one z-buffer pass, shadows, the back colour.

For a batch of :class:`~mould.datasets.dressing.Dressed` scenes on any torch device:

1. **framing**: each camera looks at its scene's bounding box from the drawn direction and frames the
   projected scene with :func:`mould.framing.square_box`, the reconstruction's framing rule
   (:func:`frame_cameras` is :func:`mould.framing.frame_points` batched);
2. **the mould**: :func:`mould.datasets.raster.rasterize` gives both depths, the mask, the normals and the
   hit triangles and barycentric weights at every pixel;
3. **the image**: the hit point's texture coordinates and smooth normal are interpolated with those
   weights; the colour is Lambertian under an ambient term and directional lights; the key light casts
   shadows, found with a shadow map (an orthographic depth map rendered from the light: a point is in
   shadow when it lies more than a bias behind the map's nearest surface);
4. **the back colour**: the hidden surface's albedo times the mean light the visible surface received
   (ambient plus lights, shadows included, averaged over the visible pixels), so the back has the photo's
   exposure and colour cast but no directional shading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from mould.datasets.raster import corner_columns, cross, nearest_depth

SHADOW_OFFSET = 2e-3
"""Shadow queries start this far out along the shading normal (metres), off their own surface."""
SHADOW_BIAS_TEXELS = 1.5
"""A point is in shadow when it lies this many shadow-map texels (plus its slope, below) behind the map."""
SHADOW_SLOPE = 1.0
"""Extra bias per unit tangent of the light's incidence, in texels: depth varies across a texel on a slope."""


@dataclass(frozen=True)
class Light:
    """A directional light.

    Attributes:
        direction: (3,) unit vector from the scene towards the light, world frame.
        colour: (3,) RGB intensity (1 = white of full strength).
        shadows: whether it casts shadows.
    """

    direction: tuple[float, float, float]
    colour: tuple[float, float, float]
    shadows: bool = False


@dataclass(frozen=True)
class Lighting:
    """Ambient light plus directional lights."""

    ambient: tuple[float, float, float]
    lights: tuple[Light, ...]


def sample_lighting(rng: np.random.Generator, towards_camera: np.ndarray) -> Lighting:
    """A key light from the camera's side of the person (mostly from above), a weaker fill, an ambient term.

    Args:
        towards_camera: (3,) float unit vector from the person towards the camera, world frame.
    """
    warmth = rng.uniform(-0.1, 0.1)
    lights = []
    for strength, spread, shadows in ((rng.uniform(0.5, 0.9), 1.0, True), (rng.uniform(0.0, 0.35), 1.6, False)):
        direction = towards_camera + rng.normal(0, spread, 3) + np.array([0.0, rng.uniform(0.2, 1.2), 0.0])
        direction /= np.linalg.norm(direction)
        colour = strength * np.array([1 + warmth, 1.0, 1 - warmth])
        lights.append(Light(tuple(direction.tolist()), tuple(colour.tolist()), shadows))
    ambient = rng.uniform(0.2, 0.45) * np.array([1 - warmth / 2, 1.0, 1 + warmth / 2])
    return Lighting(tuple(ambient.tolist()), tuple(lights))


# -- cameras ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Framing:
    """What to frame and how, per scene: (B,) yaw and elevation (degrees), distance factor, box scale, and
    (B, 2) box shift (see :func:`mould.framing.frame_points`)."""

    yaw: torch.Tensor
    elevation: torch.Tensor
    distance_factor: torch.Tensor
    box_scale: torch.Tensor
    box_shift: torch.Tensor


def scene_bounds(points: torch.Tensor, scene: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3) low and high corners of each scene's points ((P, 3) with (P,) scene indices)."""
    if batch == 1:  # one scene: plain reductions (a scatter costs ~5x more on a CPU; the same values)
        return points.amin(0, keepdim=True), points.amax(0, keepdim=True)
    index = scene[:, None].expand(-1, 3)
    low = torch.full((batch, 3), math.inf, dtype=points.dtype, device=points.device)
    high = torch.full((batch, 3), -math.inf, dtype=points.dtype, device=points.device)
    return low.scatter_reduce(0, index, points, "amin"), high.scatter_reduce(0, index, points, "amax")


def frame_cameras(
    points: torch.Tensor, scene: torch.Tensor, framing: Framing, resolution: int, *, margin: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`mould.framing.frame_points` for B scenes at once, perspective cameras, in float64.

    Args:
        points: (P, 3) float, world frame, the scenes' vertices; scene: (P,) int64 scene of each.
        framing: per scene, the view and the crop jitter.
        resolution: the crops' side N.

    Returns:
        cam_to_world: (B, 4, 4) float64 rigid camera-to-world matrices (OpenCV axes).
        intrinsics: (B, 3) float64 (focal, cx, cy), pixels.
        distance: (B,) float64 camera distances from the scenes' bounding-box centres, metres.
    """
    batch = len(framing.yaw)
    points = points.to(torch.float64)
    low, high = scene_bounds(points, scene, batch)
    centre, extent = (low + high) / 2, (high - low).amax(1)
    yaw, elevation = torch.deg2rad(framing.yaw.double()), torch.deg2rad(framing.elevation.double())
    towards = torch.stack(
        [torch.sin(yaw) * torch.cos(elevation), torch.sin(elevation), torch.cos(yaw) * torch.cos(elevation)], 1
    )
    distance = framing.distance_factor.double() * extent
    eye = centre + distance[:, None] * towards
    forward = -towards  # look_at: from the eye to the centre
    vertical = towards[:, 1:2].abs() < 0.999
    up = torch.where(vertical, towards.new_tensor([0.0, 1.0, 0.0]), towards.new_tensor([0.0, 0.0, -1.0]))
    right = cross(forward, up)
    right = right / right.norm(dim=1, keepdim=True)
    down = cross(forward, right)
    rotation = torch.stack([right, down, forward], 2)  # columns: camera axes in world coordinates
    cam_to_world = torch.eye(4, dtype=torch.float64, device=points.device).repeat(batch, 1, 1)
    cam_to_world[:, :3, :3], cam_to_world[:, :3, 3] = rotation, eye
    camera = to_camera(points, scene, cam_to_world)
    uv = camera[:, :2] / camera[:, 2:3]
    uv_low, uv_high = scene_bounds(torch.cat([uv, torch.zeros_like(uv[:, :1])], 1), scene, batch)
    side = (uv_high - uv_low)[:, :2].amax(1) / (1 - 2 * margin) * framing.box_scale.double()
    middle = (uv_low + uv_high)[:, :2] / 2 + framing.box_shift.double() * side[:, None]
    focal = resolution / side
    principal = (resolution - 1) / 2 - focal[:, None] * middle
    return cam_to_world, torch.cat([focal[:, None], principal], 1), distance


def to_camera(points: torch.Tensor, scene: torch.Tensor, cam_to_world: torch.Tensor) -> torch.Tensor:
    """(P, 3) world points to their scene's camera frame (float32 results from float64 poses)."""
    if len(cam_to_world) == 1:  # one scene: one matrix product (a batched one costs ~10x more on a CPU)
        relative = points.to(torch.float64) - cam_to_world[0, :3, 3]
        return (relative @ cam_to_world[0, :3, :3]).to(points.dtype)
    rotation, eye = cam_to_world[:, :3, :3].index_select(0, scene), cam_to_world[:, :3, 3].index_select(0, scene)
    return ((points.to(torch.float64) - eye)[..., None] * rotation).sum(1).to(points.dtype)


# -- light ------------------------------------------------------------------------------------------------
def shadow_maps(points: torch.Tensor, faces: torch.Tensor, face_scene: torch.Tensor, used: torch.Tensor,
                vertex_scene: torch.Tensor, direction: torch.Tensor, size: int):  # fmt: skip
    """Orthographic depth maps of the scenes seen from their lights (faces turned away from the light left
    out: an open surface seen from inside through an opening casts no shadow).

    Args:
        points: (V, 3) world vertices; faces, face_scene: the scenes' triangles; used: (V,) bool, vertices
            of some triangle; vertex_scene: (V,) their scenes.
        direction: (B, 3) unit vectors towards each scene's light.
        size: the maps' side in texels.

    Returns:
        (light_to_world (B, 4, 4) float64, intrinsics (B, 3), depth maps (B, S, S), 0 where nothing).
    """
    batch = len(direction)
    chosen = torch.nonzero(used)[:, 0]
    low, high = scene_bounds(points.index_select(0, chosen).double(), vertex_scene.index_select(0, chosen), batch)
    centre, radius = (low + high) / 2, ((high - low).norm(dim=1) / 2).clamp_min(1e-3)
    forward = -direction.double()
    helper = torch.where(
        forward[:, 1:2].abs() < 0.9, forward.new_tensor([0.0, 1.0, 0.0]), forward.new_tensor([1.0, 0.0, 0.0])
    )
    right = cross(forward, helper)
    right = right / right.norm(dim=1, keepdim=True)
    down = cross(forward, right)
    pose = torch.eye(4, dtype=torch.float64, device=points.device).repeat(batch, 1, 1)
    pose[:, :3, :3] = torch.stack([right, down, forward], 2)
    pose[:, :3, 3] = centre - forward * (radius + 1.0)[:, None]  # every point 1 m or more in front
    focal = size / (2 * radius * 1.02)
    intrinsics = torch.stack(
        [focal, torch.full_like(focal, (size - 1) / 2), torch.full_like(focal, (size - 1) / 2)], 1
    )
    light_points = to_camera(points, vertex_scene, pose)
    # The nearest surface seen from a light faces it (every surface is wound counter-clockwise seen from
    # outside): the faces turned away cannot cast the map's depth, and half the work goes.
    corners = [points.index_select(0, corner) for corner in corner_columns(faces)]
    towards = direction.index_select(0, face_scene)
    facing = (cross(corners[1] - corners[0], corners[2] - corners[0]) * towards).sum(1) > 0
    lit = torch.nonzero(facing)[:, 0]
    depth = nearest_depth(
        light_points,
        faces.index_select(0, lit),
        face_scene.index_select(0, lit),
        intrinsics.to(points.dtype),
        size,
        orthographic=True,
    )
    return pose, intrinsics, depth


def lit_fraction(query: torch.Tensor, normal: torch.Tensor, scene: torch.Tensor, direction: torch.Tensor,
                 maps: tuple) -> torch.Tensor:  # fmt: skip
    """(M,) 1.0 where each world point (M, 3) with unit normal (M, 3) sees its scene's light, else 0.0."""
    pose, intrinsics, depth = maps
    size = depth.shape[-1]
    origin = query + normal * SHADOW_OFFSET
    local = to_camera(origin, scene, pose).double()
    k = intrinsics.index_select(0, scene)
    u = torch.round(local[:, 0] * k[:, 0] + k[:, 1]).long().clamp(0, size - 1)
    v = torch.round(local[:, 1] * k[:, 0] + k[:, 2]).long().clamp(0, size - 1)
    nearest = depth.reshape(-1).index_select(0, (scene * size + v) * size + u).double()
    cosine = (normal.double() * direction.index_select(0, scene).double()).sum(1).clamp(0.05, 1)
    slope = torch.sqrt(1 - cosine**2) / cosine
    bias = (SHADOW_BIAS_TEXELS + SHADOW_SLOPE * slope.clamp(max=4)) / k[:, 0]
    return ((nearest <= 0) | (local[:, 2] <= nearest + bias)).to(query.dtype)

"""The image and the back colour of a batch of dressed scenes, from one z-buffer pass per camera and light.

See :mod:`mould.datasets.render` for the steps; this module runs them for a batch on any torch device and
returns per-pixel tensors. Randomness per pixel (background grain and noise, sensor noise) comes from each
sample's own torch generator, drawn in a fixed order, so a sample does not depend on its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mould.datasets.appearance import albedo
from mould.datasets.backdrops import paint_backdrops
from mould.datasets.dressing import Dressed
from mould.datasets.raster import Hits, rasterize
from mould.datasets.render import Framing, frame_cameras, lit_fraction, shadow_maps, to_camera
from mould.datasets.scenes import SceneDraw


@dataclass(frozen=True)
class Rendered:
    """B rendered samples (N x N), on the scenes' device.

    Attributes:
        hits: the mould's maps (camera frame) with the hit triangles (:class:`~mould.datasets.raster.Hits`).
        cam_to_world: (B, 4, 4) float64 cameras; intrinsics: (B, 3) float64 (focal, cx, cy), pixels.
        image: (B, N, N, 3) uint8 the photo.
        back_image: (B, N, N, 3) uint8 the hidden surface's colour (0 outside the mask).
        light: (B, 3) float32 mean light the visible surface received (the back colour's exposure).
    """

    hits: Hits
    cam_to_world: torch.Tensor
    intrinsics: torch.Tensor
    distance: torch.Tensor
    image: torch.Tensor
    back_image: torch.Tensor
    light: torch.Tensor


def _column(values, device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


def _surface_at(
    dressed: Dressed, face: torch.Tensor, weights: torch.Tensor, attribute: torch.Tensor
) -> torch.Tensor:
    """(M, 3) a per-vertex attribute interpolated at hits on (M,) triangles with (M, 3) weights."""
    corners = attribute.index_select(0, dressed.faces.index_select(0, face).reshape(-1)).reshape(-1, 3, 3)
    return (corners * weights[..., None].to(corners.dtype)).sum(1)


def _albedo_at(dressed: Dressed, face: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    material = dressed.face_material.index_select(0, face)
    return albedo(
        dressed.materials.index_select(0, material),
        dressed.material_offsets.index_select(0, material),
        _surface_at(dressed, face, weights, dressed.texcoords),
    )


def render_batch(
    dressed: Dressed,
    draws: list[SceneDraw],
    resolution: int,
    *,
    shadow_size: int,
    generators: list[torch.Generator],
) -> Rendered:
    """Frame, rasterise and shade B dressed scenes.

    Args:
        dressed: the scenes' geometry (:func:`mould.datasets.dressing.dress`).
        draws: their random choices (views, lights, backgrounds, noise).
        resolution: N.
        shadow_size: side of the key light's shadow map, texels.
        generators: one torch generator per scene on the scenes' device (see the module docstring).
    """
    device, batch, n = dressed.vertices.device, len(draws), resolution
    vertex_scene = torch.zeros(len(dressed.vertices), dtype=torch.int64, device=device)
    if batch > 1:
        vertex_scene[dressed.faces.reshape(-1)] = dressed.face_scene.repeat_interleave(3)
    framing = Framing(
        yaw=_column([d.yaw for d in draws], device),
        elevation=_column([d.elevation for d in draws], device),
        distance_factor=_column([d.distance_factor for d in draws], device),
        box_scale=_column([d.box_scale for d in draws], device),
        box_shift=_column([d.box_shift for d in draws], device),
    )
    used = torch.nonzero(dressed.used)[:, 0]
    cam_to_world, intrinsics, distance = frame_cameras(
        dressed.vertices.index_select(0, used), vertex_scene.index_select(0, used), framing, n
    )
    camera_points = to_camera(dressed.vertices, vertex_scene, cam_to_world)
    hits = rasterize(camera_points, dressed.faces, dressed.face_scene, intrinsics.to(torch.float32), n)

    mask = hits.mask.reshape(-1)
    pixel = torch.nonzero(mask)[:, 0]
    scene = torch.div(pixel, n * n, rounding_mode="floor")
    face = hits.visible_face.reshape(-1).index_select(0, pixel)
    weights = hits.visible_weights.reshape(-1, 3).index_select(0, pixel)
    points = _surface_at(dressed, face, weights, dressed.vertices)
    normal = _surface_at(dressed, face, weights, dressed.normals)
    normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)
    view = points.double() - cam_to_world[scene, :3, 3]
    normal = torch.where(((normal.double() * view).sum(1) > 0)[:, None], -normal, normal)  # face the camera

    light = _column([d.lighting.ambient for d in draws], device).index_select(0, scene)
    for slot in range(max(len(d.lighting.lights) for d in draws)):
        sources = [d.lighting.lights[slot] for d in draws]
        direction = _column([s.direction for s in sources], device)
        lambert = (normal * direction.index_select(0, scene)).sum(1).clamp_min(0)
        if any(s.shadows for s in sources):
            maps = shadow_maps(dressed.vertices, dressed.faces, dressed.face_scene, dressed.used, vertex_scene,
                               direction, shadow_size)  # fmt: skip
            shadowed = _column([float(s.shadows) for s in sources], device).index_select(0, scene)
            visible = lit_fraction(points, normal, scene, direction, maps)
            lambert = lambert * (1 - shadowed * (1 - visible))
        light = light + lambert[:, None] * _column([s.colour for s in sources], device).index_select(0, scene)
    colour = _albedo_at(dressed, face, weights) * light

    backdrop = paint_backdrops([d.backdrop for d in draws], n, generators, device)
    image = backdrop.reshape(-1, 3).index_copy_(0, pixel, colour).reshape(batch, n, n, 3)
    image = _soften_silhouette(image, hits.mask)
    noise = torch.stack([torch.randn((n, n, 3), generator=g, device=device) for g in generators])
    image = image + noise * _column([d.noise for d in draws], device)[:, None, None, None]

    counts = torch.zeros(batch, device=device).index_add_(0, scene, torch.ones_like(scene, dtype=torch.float32))
    mean_light = torch.zeros((batch, 3), device=device).index_add_(0, scene, light) / counts.clamp_min(1)[:, None]
    back_pixel = pixel  # the hidden surface exists exactly where the visible one does
    back_face = hits.hidden_face.reshape(-1).index_select(0, back_pixel)
    back_weights = hits.hidden_weights.reshape(-1, 3).index_select(0, back_pixel)
    back = _albedo_at(dressed, back_face, back_weights) * mean_light.index_select(0, scene)
    back_image = torch.zeros((batch * n * n, 3), device=device).index_copy_(0, back_pixel, back)
    return Rendered(
        hits=hits,
        cam_to_world=cam_to_world,
        intrinsics=intrinsics,
        distance=distance,
        image=_to_bytes(image),
        back_image=_to_bytes(back_image.reshape(batch, n, n, 3)),
        light=mean_light,
    )


def _to_bytes(image: torch.Tensor) -> torch.Tensor:
    """uint8 of an image in [0, 1] (clipped, rounded half up)."""
    return image.clamp(0, 1).mul_(255).add_(0.5).floor_().to(torch.uint8)  # in place: one new tensor


def _soften_silhouette(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Blend silhouette pixels with their 3 x 3 neighbourhood: a cheap anti-aliasing of one ray per pixel.

    Args:
        image: (B, N, N, 3) float; mask: (B, N, N) bool.

    Returns:
        (B, N, N, 3): pixels whose 4-neighbours' mask differs from theirs (the borders repeat their edge) become
        the mean of themselves and their 3 x 3 box.
    """
    batch, n = mask.shape[:2]
    padded = torch.nn.functional.pad(mask[:, None].float(), (1, 1, 1, 1), mode="replicate")[:, 0] > 0.5
    edge = torch.zeros_like(mask)
    for dv, du in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[:, dv : dv + n, du : du + n] != mask
    pixel = torch.nonzero(edge.reshape(-1))[:, 0]
    if not len(pixel):
        return image
    scene, row, column = pixel // (n * n), (pixel // n) % n, pixel % n
    flat = image.reshape(-1, 3)
    box = torch.zeros((len(pixel), 3), dtype=image.dtype, device=image.device)
    for dv in (-1, 0, 1):
        for du in (-1, 0, 1):  # the 3 x 3 box, the borders repeating their edge
            neighbour = (scene * n + (row + dv).clamp(0, n - 1)) * n + (column + du).clamp(0, n - 1)
            box += flat.index_select(0, neighbour)
    softened = 0.5 * flat.index_select(0, pixel) + 0.5 * box / 9
    return flat.index_copy(0, pixel, softened).reshape(image.shape)

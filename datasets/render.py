"""Rendering a scene of surfaces by ray casting: the image and the mould come from the same rays.

One :func:`mould.encode.encode_mesh` cast over the whole scene (body, garments, hair) gives the visible and
hidden depth, the mask, the ground-truth normals and the face hit at each pixel. The image is shaded from
those same hits: the hit point is the back-projected visible depth, its barycentric coordinates in the hit
face interpolate the texture coordinates and the smooth normals, and the colour is Lambertian under an
ambient term and directional lights, the key light casting shadows (one shadow ray per pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mould.datasets.appearance import Material, albedo
from mould.datasets.shells import Surface, vertex_normals

from mould.camera import Camera
from mould.container import Mould
from mould.encode import encode_mesh


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


def sample_lighting(rng: np.random.Generator, camera: Camera) -> Lighting:
    """A key light from the camera's side of the person (mostly from above), a weaker fill, an ambient term."""
    towards_camera = -camera.cam_to_world[:3, 2]
    warmth = rng.uniform(-0.1, 0.1)
    lights = []
    for strength, spread, shadows in ((rng.uniform(0.5, 0.9), 1.0, True), (rng.uniform(0.0, 0.35), 1.6, False)):
        direction = towards_camera + rng.normal(0, spread, 3) + np.array([0.0, rng.uniform(0.2, 1.2), 0.0])
        direction /= np.linalg.norm(direction)
        colour = strength * np.array([1 + warmth, 1.0, 1 - warmth])
        lights.append(Light(tuple(direction.tolist()), tuple(colour.tolist()), shadows))
    ambient = rng.uniform(0.2, 0.45) * np.array([1 - warmth / 2, 1.0, 1 + warmth / 2])
    return Lighting(tuple(ambient.tolist()), tuple(lights))


def render_scene(
    surfaces: list[tuple[Surface, Material]],
    camera: Camera,
    lighting: Lighting,
    background: np.ndarray,
    *,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[Mould, np.ndarray]:
    """Ray-cast a scene: its mould (with ground-truth normals) and the shaded image on the same rays.

    Args:
        surfaces: (surface, material) pairs, world frame.
        camera: the crop's camera.
        lighting: the lights.
        background: (N, N, 3) float in [0, 1], behind the person.
        noise: standard deviation of the sensor noise added to the image (0-255 scale / 255).
        rng: draws the sensor noise (needed when ``noise`` > 0).

    Returns:
        (mould, image): the mould holds the image; image (N, N, 3) uint8.
    """
    offsets = np.cumsum([0] + [len(s.vertices) for s, _ in surfaces])
    vertices = np.concatenate([s.vertices for s, _ in surfaces])
    faces = np.concatenate([s.faces + o for (s, _), o in zip(surfaces, offsets)])
    texcoords = np.concatenate([s.texcoords for s, _ in surfaces])
    face_part = np.repeat(np.arange(len(surfaces)), [len(s.faces) for s, _ in surfaces])
    encoding = encode_mesh(vertices, faces, camera, normals=True)
    mould = encoding.mould
    image = np.array(background, dtype=np.float64, copy=True)
    hit = mould.mask
    if hit.any():
        rows, columns = np.nonzero(hit)
        face = encoding.visible_faces[rows, columns]
        points = camera.to_world(camera.backproject(columns, rows, mould.visible[rows, columns]))
        weights = _barycentric(points, vertices[faces[face]])
        corners = faces[face]
        coords = np.einsum("mk,mkd->md", weights, texcoords[corners])
        shading_normals = np.concatenate(
            [s.normals if s.normals is not None else vertex_normals(s.vertices, s.faces) for s, _ in surfaces]
        )
        normals = np.einsum("mk,mkd->md", weights, shading_normals[corners])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        view = points - camera.centre
        normals *= np.where(np.sum(normals * view, axis=1) > 0, -1.0, 1.0)[:, None]  # face the camera
        colour = np.zeros((len(rows), 3))
        part = face_part[face]
        for index, (_, material) in enumerate(surfaces):
            chosen = part == index
            if chosen.any():
                colour[chosen] = albedo(material, coords[chosen])
        light = np.broadcast_to(np.array(lighting.ambient), colour.shape).copy()
        for source in lighting.lights:
            direction = np.array(source.direction)
            lambert = np.clip(normals @ direction, 0, None)
            if source.shadows:
                lambert *= _unshadowed(vertices, faces, points + normals * 2e-3, direction)
            light += lambert[:, None] * np.array(source.colour)
        image[rows, columns] = colour * light
    image = _soften_silhouette(image, hit)
    if noise > 0:
        image = image + (rng or np.random.default_rng(0)).normal(0, noise, image.shape)
    pixels = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    return mould.replace(image=pixels), pixels


def _barycentric(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(M, 3) barycentric weights of (M, 3) points in (M, 3, 3) triangles (clipped to the triangle)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = np.sum(v0 * v0, 1), np.sum(v0 * v1, 1), np.sum(v1 * v1, 1)
    d20, d21 = np.sum(v2 * v0, 1), np.sum(v2 * v1, 1)
    denominator = d00 * d11 - d01 * d01
    denominator = np.where(np.abs(denominator) < 1e-20, 1e-20, denominator)
    w1 = (d11 * d20 - d01 * d21) / denominator
    w2 = (d00 * d21 - d01 * d20) / denominator
    weights = np.clip(np.stack([1 - w1 - w2, w1, w2], axis=1), 0, 1)
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)


def _unshadowed(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(M,) 1.0 where a ray from each origin towards the light escapes the scene, else 0.0."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    rays = np.concatenate([origins, np.broadcast_to(direction, origins.shape)], axis=1).astype(np.float32)
    return (~np.isfinite(scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy())).astype(np.float64)


def _soften_silhouette(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend silhouette pixels with their 3 x 3 neighbourhood: a cheap anti-aliasing of one ray per pixel."""
    padded = np.pad(mask, 1, mode="edge")
    n = mask.shape[0]
    edge = np.zeros_like(mask)
    for dv, du in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dv : dv + n, du : du + n] != mask
    if not edge.any():
        return image
    padded_image = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    box = sum(padded_image[dv : dv + n, du : du + n] for dv in range(3) for du in range(3)) / 9
    out = image.copy()
    out[edge] = 0.5 * image[edge] + 0.5 * box[edge]
    return out

"""Texturing a reconstructed mesh from the crop it was predicted from.

**Layout.** The texture is an atlas of two tiles side by side, each the crop's size N x N:

- the left tile is **the crop itself**, with its background texels replaced by the colour of the nearest
  person pixel (texture padding, so that filtering at the silhouette never pulls in background);
- the right tile colours **the back** (the hidden surface), by the chosen strategy.

A vertex takes as UV its pixel position in the crop (its projection through the mould's camera), in the
left tile if it lies on the front surface (nearer the visible than the hidden depth of its pixel), in the
right tile otherwise. Vertices projecting outside the silhouette use the nearest silhouette pixel.

**Back strategies** (``back``):

- ``"predicted"``: the network's own prediction of the back's colour (``Mould.back_image``; models with
  a back-colour head), smoothed within the silhouette (:data:`BACK_SMOOTHING`); the default where there is
  one;
- ``"smooth"``: the front colour smoothed within the silhouette (:data:`SMOOTH_MIRROR`): the front's
  colours where they are, without its detail (a face, a print);
- ``"mirror"``: the front colour carried through the body along the pixel's ray (the back tile is the crop);
- ``"nearest"``: the colour of the nearest point of the visible surface in 3D (for a torso, mostly the colours
  at its sides wrapping round);
- ``"none"``: a neutral grey (:data:`UNSEEN_GREY`).

**Seam.** Where the back meets the front at the silhouette, the back tile is blended into the front colour
of the same pixel over ``seam_width`` pixels from the silhouette's edge, so the colours meet without a step.
Faces that touch the front use the front tile for all their corners; back vertices they share get a twin
with the front-tile UV (same position), so the UV seam never crosses the atlas.

The strategy, seam width and layout are recorded in ``Mesh.metadata`` (and from there in the exported files).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from mould.recon.mesh import Mesh

from mould.checks import check_array
from mould.container import Mould

BackTexture = Literal["predicted", "smooth", "mirror", "nearest", "none"]
BACK_TEXTURES: tuple[BackTexture, ...] = ("predicted", "smooth", "mirror", "nearest", "none")

BACK_SMOOTHING = 8.0
"""Standard deviation, in pixels of a 256² crop (scaled with the crop), of the Gaussian that smooths the
predicted back colour within the silhouette. The back-colour branch still lets traces of the front's
detail through (the eyes of a face); smoothing them away also brings the colour closer to the truth: on
the 200 held-out version-5 samples (``mould eval``), 22.1 levels of mean absolute error unsmoothed, 20.6,
20.5 and 20.6 at 4, 6 and 8 pixels; the largest keeps the least of a face."""

SMOOTH_MIRROR = 12.0
"""The same for ``"smooth"``, the front colour smoothed: 27.9 levels unsmoothed (``"mirror"``), 21.3, 21.0
and 21.2 at 8, 12 and 16 pixels on the same samples."""

UNSEEN_GREY = (160, 160, 160)
"""RGB of surfaces nobody saw (``back="none"``): a light neutral grey."""

DEFAULT_SEAM_WIDTH = 4.0
"""Pixels over which the back blends into the front colour at the silhouette (~3 cm at 256²)."""


def pad_background(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, N, 3) uint8: ``image`` with every pixel outside ``mask`` set to the nearest mask pixel's colour."""
    from scipy.ndimage import distance_transform_edt

    _, (rows, cols) = distance_transform_edt(~mask, return_indices=True)
    return image[rows, cols]


def smooth_inside(colour: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """(N, N, 3) float64: ``colour`` blurred by a Gaussian of ``sigma`` pixels over the ``mask`` pixels only
    (each pixel the weighted mean of the mask pixels around it: the background never bleeds in), and left
    as it is outside the mask.

    Args:
        colour: (N, N, 3) colours. mask: (N, N) bool. sigma: pixels (0: no smoothing).
    """
    from scipy.ndimage import gaussian_filter

    colour = np.asarray(colour, np.float64)
    if sigma <= 0 or not mask.any():
        return colour.copy()
    weight = mask.astype(np.float64)
    total = gaussian_filter(weight, sigma, mode="constant")
    smoothed = (
        np.stack([gaussian_filter(colour[..., c] * weight, sigma, mode="constant") for c in range(3)], axis=-1)
        / np.maximum(total, 1e-12)[..., None]
    )
    return np.where(mask[..., None], smoothed, colour)


def back_tile(mould: Mould, front: np.ndarray, back: BackTexture, seam_width: float) -> np.ndarray:
    """(N, N, 3) uint8 colours of the hidden surface per pixel, blended into ``front`` at the silhouette.

    Args:
        mould: the mould (its camera and maps place the visible and hidden points).
        front: (N, N, 3) uint8, the padded crop.
        back: the strategy.
        seam_width: blend width in pixels (0: no blending).
    """
    from scipy.ndimage import distance_transform_edt

    mask = mould.mask
    if back == "predicted":
        if mould.back_image is None:
            raise ValueError("back: 'predicted' needs a mould holding a predicted back colour (back_image)")
        colour = smooth_inside(mould.back_image, mask, BACK_SMOOTHING * mould.resolution / 256)
    elif back == "smooth":
        colour = smooth_inside(front, mask, SMOOTH_MIRROR * mould.resolution / 256)
    elif back == "mirror":
        colour = front.astype(np.float64)
    elif back == "none":
        colour = np.broadcast_to(np.asarray(UNSEEN_GREY, np.float64), front.shape)
    else:  # nearest visible point in 3D
        from scipy.spatial import cKDTree

        from mould.decode import depth_to_camera_points

        rows, cols = np.nonzero(mask)
        visible_points = depth_to_camera_points(mould.visible, mould.camera)[rows, cols]
        hidden_points = depth_to_camera_points(mould.hidden, mould.camera)[rows, cols]
        _, nearest = cKDTree(visible_points).query(hidden_points)
        colour = front.astype(np.float64).copy()
        colour[rows, cols] = front[rows[nearest], cols[nearest]]
    if seam_width > 0:
        # distance_transform_edt gives 1 on the silhouette's edge pixels: the blend starts there at 0.
        weight = np.clip((distance_transform_edt(mask) - 1) / seam_width, 0, 1)[..., None]
        colour = weight * colour + (1 - weight) * front
    tile = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
    return pad_background(tile, mask)


def _nearest_mask_pixel(mask: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates moved to the nearest mask pixel centre where they fall outside the mask."""
    from scipy.ndimage import distance_transform_edt

    n = mask.shape[0]
    col = np.clip(np.rint(u), 0, n - 1).astype(np.int64)
    row = np.clip(np.rint(v), 0, n - 1).astype(np.int64)
    _, (near_rows, near_cols) = distance_transform_edt(~mask, return_indices=True)
    outside = ~mask[row, col]
    u = np.where(outside, near_cols[row, col], np.clip(u, 0, n - 1))
    v = np.where(outside, near_rows[row, col], np.clip(v, 0, n - 1))
    return u, v


def sample_bilinear(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(V, 3) uint8 colours of ``texture`` (H, W, 3) at ``uv`` (V, 2) in OBJ convention (origin bottom left)."""
    h, w = texture.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip((1 - uv[:, 1]) * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    image = texture.astype(np.float64)
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return np.clip(np.rint(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def texture_mesh(
    mesh: Mesh,
    mould: Mould,
    image: np.ndarray | None = None,
    back: BackTexture = "mirror",
    *,
    seam_width: float = DEFAULT_SEAM_WIDTH,
) -> Mesh:
    """Project the crop onto a mesh made from ``mould`` and colour its back.

    Args:
        mesh: a mesh in the mould's world frame (as :func:`mould.recon.mesh.mould_to_mesh` returns it).
        mould: the mould it was made from.
        image: (N, N, 3) uint8 RGB crop, N = the mould's resolution; None uses ``mould.image``.
        back: ``"predicted"``, ``"smooth"``, ``"mirror"``, ``"nearest"`` or ``"none"`` (module doc).
        seam_width: pixels over which the back blends into the front at the silhouette.

    Returns:
        A new :class:`Mesh` with ``uv``, ``texture`` (N, 2N, 3), ``colors`` (the texture at each vertex) and
        ``metadata["back_texture"]``. Vertices on the UV seam are duplicated (same position), recorded in
        ``seam_source``.

    Raises:
        ValueError: no image, an image of the wrong size, or an unknown ``back``.
    """
    if back not in BACK_TEXTURES:
        raise ValueError(f"back: expected one of {BACK_TEXTURES}, got {back!r}")
    if not seam_width >= 0:
        raise ValueError(f"seam_width: expected >= 0, got {seam_width}")
    image = mould.image if image is None else image
    n = mould.resolution
    if image is None:
        raise ValueError("image: no texture image given and the mould holds none")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[:2] != (n, n):
        raise ValueError(f"image: the texture is {image.shape[1]}x{image.shape[0]} but the mould is {n}x{n}")
    check_array("image", image, (n, n, 3), np.uint8)
    if not mould.mask.any():
        raise ValueError("mould: no person in this mould (the mask is empty)")

    front = pad_background(image, mould.mask)
    texture = np.concatenate([front, back_tile(mould, front, back, seam_width)], axis=1)

    camera = mould.camera
    pixels, depth = camera.project(mesh.vertices.astype(np.float64))
    pixel_u, pixel_v = _nearest_mask_pixel(mould.mask, pixels[:, 0], pixels[:, 1])
    row, col = np.rint(pixel_v).astype(np.int64), np.rint(pixel_u).astype(np.int64)
    on_front = np.abs(depth - mould.visible[row, col]) <= np.abs(depth - mould.hidden[row, col])

    # Faces touching the front take the front tile; back vertices they use get a twin with a front UV.
    faces = mesh.faces.astype(np.int64)
    front_face = on_front[faces].any(axis=1)
    shared = np.zeros(len(on_front), bool)
    shared[faces[front_face].reshape(-1)] = True
    shared &= ~on_front
    twins = np.nonzero(shared)[0]
    twin_of = np.full(len(on_front), -1, np.int64)
    twin_of[twins] = len(on_front) + np.arange(len(twins))
    corners = faces[front_face]
    corners = np.where(shared[corners], twin_of[corners], corners)
    faces = faces.copy()
    faces[front_face] = corners
    source = np.concatenate([np.arange(len(on_front)), twins])  # the original vertex of each vertex
    tile = np.concatenate([(~on_front).astype(np.float64), np.zeros(len(twins))])
    uv = np.stack([(pixel_u[source] + 0.5 + tile * n) / (2 * n), 1 - (pixel_v[source] + 0.5) / n], axis=1).astype(
        np.float32
    )
    metadata = dict(mesh.metadata) | {
        "back_texture": back,
        "seam_width_px": float(seam_width),
        "texture_layout": "atlas N x 2N: left = the crop (background padded), right = the back",
    }
    return Mesh(
        vertices=mesh.vertices[source],
        faces=faces.astype(np.int32),
        uv=uv,
        colors=sample_bilinear(texture, uv),
        texture=texture,
        metadata=metadata,
        seam_source=source.astype(np.int32),
    )

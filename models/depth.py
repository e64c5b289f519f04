"""The depth parametrisation the network predicts in, and depth-map geometry in torch.

Relative depth
--------------
A photo does not tell how far away the person stood (a small person near the camera and a tall one far
away look alike), so the network predicts depth **relative to a per-person reference**, in units of
``scale`` metres::

    relative = (depth - reference) / scale          depth = reference + scale * relative

- ``reference`` is the **median visible depth inside the silhouette** (:func:`reference_depth`) for the
  training targets: a robust "distance to the person" that does not depend on the framing.
- ``scale`` is :data:`DEFAULT_DEPTH_SCALE` = 0.5 m: a body is ~0.2-0.6 m deep, so relative depths are of
  order 1 (visible in about [-1, 0.5], hidden in about [-0.5, 1]).
- At inference the reference is unknown from one photo: the caller passes an assumed distance from the
  camera to the person's front surface (for example the distance the photo was taken from, or
  ``focal * person_height / silhouette_height_px`` for a perspective camera). An error in the reference
  shifts the whole person along the optical axis; with a perspective camera it also scales the
  back-projected person (a 10 % error in distance gives a 10 % error in size), as for any
  single-view method.

Normals from depth
------------------
:func:`depth_normals` back-projects each pixel with the batch's own intrinsics (perspective: through the
pinhole; orthographic: a uniform grid), takes central differences along the image axes and crosses them.
This is exact for planes and first-order accurate on smooth surfaces; it is the same operator for
predictions and ground truth, so a perfect prediction has a zero normal loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mould.models.configs import DEFAULT_DEPTH_SCALE


def _as_batch_map(name: str, value: torch.Tensor) -> torch.Tensor:
    if value.ndim == 3:
        value = value[:, None]
    if value.ndim != 4 or value.shape[1] != 1:
        raise ValueError(f"{name}: expected (B, 1, H, W) or (B, H, W), got {tuple(value.shape)}")
    return value


def reference_depth(visible: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The per-person reference: the median visible depth inside the mask (lower median, as torch's).

    Args:
        visible: (B, 1, H, W) or (B, H, W) float, camera-space z, metres.
        mask: same shape, bool or float (> 0.5 is the person).

    Returns:
        (B,) float, metres; 0 for an empty mask (its relative depths are then never used).
    """
    visible = _as_batch_map("visible", visible)
    mask = _as_batch_map("mask", mask)
    if mask.shape != visible.shape:
        raise ValueError(f"mask: expected the shape of visible {tuple(visible.shape)}, got {tuple(mask.shape)}")
    batch = visible.shape[0]
    inside = (mask > 0.5).reshape(batch, -1)
    values = torch.where(
        inside, visible.reshape(batch, -1), torch.full_like(visible.reshape(batch, -1), torch.inf)
    )
    count = inside.sum(dim=1)
    middle = ((count - 1).clamp(min=0) // 2)[:, None]
    median = values.sort(dim=1).values.gather(1, middle)[:, 0]
    return torch.where(count > 0, median, torch.zeros_like(median))


def _reference_view(reference: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    reference = torch.as_tensor(reference, dtype=like.dtype, device=like.device)
    if reference.ndim == 0:
        return reference
    if reference.ndim != 1 or reference.shape[0] != like.shape[0]:
        raise ValueError(f"reference: expected a scalar or ({like.shape[0]},), got {tuple(reference.shape)}")
    return reference.reshape(-1, *([1] * (like.ndim - 1)))


def depth_to_relative(
    depth: torch.Tensor, reference: torch.Tensor | float, scale: float = DEFAULT_DEPTH_SCALE
) -> torch.Tensor:
    """Metric depth to relative depth: ``(depth - reference) / scale``.

    Args:
        depth: (B, ...) float, camera-space z, metres.
        reference: (B,) or scalar, metres (see :func:`reference_depth`).
        scale: metres per relative unit.
    """
    return (depth - _reference_view(reference, depth)) / scale


def relative_to_depth(
    relative: torch.Tensor, reference: torch.Tensor | float, scale: float = DEFAULT_DEPTH_SCALE
) -> torch.Tensor:
    """Relative depth to metric depth: ``reference + scale * relative`` (inverse of
    :func:`depth_to_relative`)."""
    return _reference_view(reference, relative) + scale * relative


def extend_outside(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill ``values`` outside ``mask`` with a smooth continuation of the values inside (pull-push).

    The masked mean is pulled down an image pyramid (2x2 averages of known pixels) and pushed back up:
    each unknown pixel takes the value of the finest level whose 2x2...2^k block holds known pixels. Used
    to give depth targets beyond the true silhouette, so a pixel wrongly predicted as the person is pulled
    towards the nearby surface rather than towards an arbitrary background value.

    Args:
        values: (B, C, H, W) float.
        mask: (B, 1, H, W) bool or float (> 0.5 is known).

    Returns:
        (B, C, H, W): ``values`` inside the mask, the continuation outside; all zeros for an empty mask.
    """
    known = (mask > 0.5).to(values.dtype)
    levels = [(values * known, known)]
    while min(levels[-1][1].shape[-2:]) > 1:
        total, weight = levels[-1]
        levels.append((F.avg_pool2d(total, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    filled = None
    for total, weight in reversed(levels):
        mean = total / weight.clamp(min=1e-12)
        if filled is None:
            filled = torch.where(weight > 0, mean, torch.zeros_like(mean))
        else:
            coarse = F.interpolate(filled, size=total.shape[-2:], mode="nearest")
            filled = torch.where(weight > 0, mean, coarse)
    return torch.where(known > 0, values, filled)


def depth_to_points(depth: torch.Tensor, intrinsics: torch.Tensor, perspective: torch.Tensor) -> torch.Tensor:
    """Back-project depth maps to camera-frame points, each with its own camera.

    Args:
        depth: (B, 1, H, W) float, camera-space z, metres.
        intrinsics: (B, 3) float: focal (px; orthographic: px/m), cx, cy (px); pixel centres at integers.
        perspective: (B,) bool, True for a pinhole camera, False for an orthographic one.

    Returns:
        (B, 3, H, W) float points (x right, y down, z forward), metres.
    """
    depth = _as_batch_map("depth", depth)
    batch, _, height, width = depth.shape
    if intrinsics.shape != (batch, 3):
        raise ValueError(f"intrinsics: expected ({batch}, 3), got {tuple(intrinsics.shape)}")
    if perspective.shape != (batch,):
        raise ValueError(f"perspective: expected ({batch},), got {tuple(perspective.shape)}")
    intrinsics = intrinsics.to(depth.dtype)
    focal, cx, cy = (intrinsics[:, i].reshape(batch, 1, 1, 1) for i in range(3))
    u = torch.arange(width, dtype=depth.dtype, device=depth.device).reshape(1, 1, 1, width)
    v = torch.arange(height, dtype=depth.dtype, device=depth.device).reshape(1, 1, height, 1)
    # Perspective: x = (u - cx) / f * z. Orthographic: x = (u - cx) / f, whatever the depth.
    stretch = torch.where(perspective.reshape(batch, 1, 1, 1), depth, torch.ones_like(depth))
    return torch.cat([(u - cx) / focal * stretch, (v - cy) / focal * stretch, depth], dim=1)


def _central_difference(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``values[i + 1] - values[i - 1]`` along ``dim``, one-sided ``values[1] - values[0]`` (and the same at
    the far end) on the borders. Slices, not ``F.pad(mode="replicate")``, which is ~1000x slower on CPU
    for small float64 maps."""
    step = values.diff(dim=dim)
    first, last = step.narrow(dim, 0, 1), step.narrow(dim, step.shape[dim] - 1, 1)
    inner = step.narrow(dim, 0, step.shape[dim] - 1) + step.narrow(dim, 1, step.shape[dim] - 1)
    return torch.cat([first, inner, last], dim=dim)


def depth_normals(
    depth: torch.Tensor,
    intrinsics: torch.Tensor,
    perspective: torch.Tensor,
    *,
    facing: str,
    eps: float = 1e-12,
) -> torch.Tensor:
    """Unit normals of depth maps from central differences of their back-projected points.

    The cross product of the tangents along u and v always has a positive dot product with the viewing
    ray (its z component is z^2/f^2 for a pinhole), so the orientation needs no data-dependent flip:
    visible normals are its opposite (towards the camera), hidden normals the product itself.

    Args:
        depth: (B, 1, H, W) float, camera-space z, metres (continue it smoothly beyond the silhouette,
            e.g. with :func:`extend_outside`, if border normals matter).
        intrinsics, perspective: the cameras, see :func:`depth_to_points`.
        facing: ``"towards"`` the camera (visible map) or ``"away"`` (hidden map).
        eps: floor of the cross product's length before normalising.

    Returns:
        (B, 3, H, W) unit normals, camera frame; borders use one-sided differences (H, W >= 2).
    """
    if facing not in ("towards", "away"):
        raise ValueError(f"facing: expected 'towards' or 'away', got {facing!r}")
    # Component by component: torch.linalg.cross and vector_norm over dim 1 are ~20x slower on CPU.
    x, y, z = depth_to_points(depth, intrinsics, perspective).unbind(dim=1)
    xu, yu, zu = (_central_difference(c, dim=-1) for c in (x, y, z))
    xv, yv, zv = (_central_difference(c, dim=-2) for c in (x, y, z))
    normal = torch.stack([yu * zv - zu * yv, zu * xv - xu * zv, xu * yv - yu * xv], dim=1)
    length = (normal * normal).sum(dim=1, keepdim=True).sqrt().clamp(min=eps)
    normal = normal / length
    return -normal if facing == "towards" else normal

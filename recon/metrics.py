"""Surface and volume errors between two meshes: Chamfer, point-to-surface, normals, F-score, IoU.

**Sampling (deterministic).** Each mesh is sampled with ``samples`` points (default 100,000), uniform over
its area: triangles are drawn with probability proportional to their area, then a uniform point inside
each with the square-root barycentric rule, all from ``numpy.random.default_rng(seed)`` (default seed 0;
mesh A uses ``seed``, mesh B ``seed + 1``). Distances are exact point-to-triangle distances to the other
mesh (open3d's ``RaycastingScene.compute_closest_points``), not point-to-point, so they do not depend on
the other mesh's sampling. The volume IoU draws ``volume_samples`` points (default 200,000) uniformly in
the union of both bounding boxes with ``default_rng(seed + 2)``.

**Definitions** (d_AB: distance of a sample of A to the surface of B):

- ``p2s_a_to_b_mm``, ``p2s_b_to_a_mm``: mean d_AB, mean d_BA, in mm;
- ``chamfer_l1_mm``: (mean d_AB + mean d_BA) / 2, the *mean symmetric surface error*, mm;
- ``chamfer_l2_mm2``: (mean d_AB² + mean d_BA²) / 2, mm²;
- ``normal_consistency``: mean over both directions of |n_sample · n_closest| (face normals), in [0, 1];
- ``precision``, ``recall``, ``fscore``: fraction of A's samples within τ of B, of B's within τ of A, and
  their harmonic mean; ``tau_mm`` is τ (default 5 mm);
- ``iou``: |inside A ∩ inside B| / |inside A ∪ inside B| over the volume samples; NaN unless both meshes
  are watertight (inside is undefined otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mould.checks import check_array
from mould.limits import LIMITS


@dataclass(frozen=True)
class MetricConfig:
    """How :func:`compare_meshes` samples and thresholds."""

    samples: int = 100_000
    """Surface points sampled on each mesh; the error of a mean distance shrinks as 1/sqrt(samples)."""
    seed: int = 0
    """Seed of the surface samples of A (B uses seed + 1, the volume samples seed + 2)."""
    tau: float = 0.005
    """F-score threshold in metres (5 mm: about half a pixel footprint at 256² for a standing person)."""
    volume_samples: int = 200_000
    """Points drawn in the union bounding box for the IoU (std. error ~0.002 for IoU ~ 0.5)."""

    def __post_init__(self) -> None:
        for name in ("samples", "volume_samples"):
            if not 1 <= getattr(self, name) <= LIMITS.metric_samples:
                raise ValueError(f"{name}: expected 1 to {LIMITS.metric_samples:,}, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed: expected >= 0, got {self.seed}")
        if not self.tau > 0:
            raise ValueError(f"tau: expected > 0, got {self.tau}")


def _as_arrays(mesh, name: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, tuple):
        vertices, faces = mesh
    else:
        vertices, faces = mesh.geometry()
    vertices = check_array(f"{name} vertices", np.asarray(vertices), (None, 3), "float", finite=True)
    faces = check_array(f"{name} faces", np.asarray(faces), (None, 3), "int")
    if len(faces) == 0:
        raise ValueError(f"{name}: the mesh has no faces")
    return vertices.astype(np.float64), faces.astype(np.int64)


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform over a mesh's area, deterministic given ``seed``.

    Args:
        vertices: (V, 3) float; faces: (F, 3) int.
        count: number of points.

    Returns:
        points: (count, 3) float64; face_ids: (count,) int64, the triangle each point lies on.
    """
    corners = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    total = area.sum()
    if not total > 0:
        raise ValueError("sample_surface: the mesh has zero area")
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(area)
    face_ids = np.minimum(
        np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right"), len(faces) - 1
    )
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    a, b, c = corners[face_ids, 0], corners[face_ids, 1], corners[face_ids, 2]
    points = (1 - s)[:, None] * a + (s * (1 - r2))[:, None] * b + (s * r2)[:, None] * c
    return points, face_ids


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    corners = vertices[faces]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    return np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)


def _scene(vertices: np.ndarray, faces: np.ndarray):
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32)))
    return scene


def closest_points(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point to a mesh and the id of the closest triangle.

    Args:
        vertices: (V, 3) float; faces: (F, 3) int; points: (P, 3) float, same frame and units.

    Returns:
        distance: (P,) float64, same units; face_ids: (P,) int64.
    """
    import open3d as o3d

    result = _scene(vertices, faces).compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))
    closest = result["points"].numpy().astype(np.float64)
    return np.linalg.norm(closest - points, axis=1), result["primitive_ids"].numpy().astype(np.int64)


def inside(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P,) bool: which points lie inside a watertight mesh (ray parity, open3d)."""
    import open3d as o3d

    occupancy = _scene(vertices, faces).compute_occupancy(o3d.core.Tensor(points.astype(np.float32)))
    return occupancy.numpy() > 0.5


def compare_meshes(a, b, config: MetricConfig | None = None) -> dict[str, float]:
    """Every metric of the module docstring between meshes ``a`` and ``b``.

    Args:
        a, b: a :class:`mould.recon.mesh.Mesh` or a ``(vertices (V, 3) float, faces (F, 3) int)`` tuple, in
            the same frame, metres. The IoU needs both watertight; a tuple's equal positions are merged for
            that check (texture seams of files).
        config: sampling and threshold; defaults when None.

    Returns:
        ``{"chamfer_l1_mm", "chamfer_l2_mm2", "p2s_a_to_b_mm", "p2s_b_to_a_mm", "normal_consistency",
        "precision", "recall", "fscore", "tau_mm", "iou"}`` as floats.
    """
    from mould.recon.mesh import topology

    config = config or MetricConfig()
    va, fa = _as_arrays(a, "a")
    vb, fb = _as_arrays(b, "b")
    points_a, faces_of_a = sample_surface(va, fa, config.samples, config.seed)
    points_b, faces_of_b = sample_surface(vb, fb, config.samples, config.seed + 1)
    d_ab, near_b = closest_points(vb, fb, points_a)
    d_ba, near_a = closest_points(va, fa, points_b)
    normals_a, normals_b = _face_normals(va, fa), _face_normals(vb, fb)
    consistency_ab = np.abs(np.sum(normals_a[faces_of_a] * normals_b[near_b], axis=1)).mean()
    consistency_ba = np.abs(np.sum(normals_b[faces_of_b] * normals_a[near_a], axis=1)).mean()
    precision = float(np.mean(d_ab <= config.tau))
    recall = float(np.mean(d_ba <= config.tau))
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    iou = math.nan
    # Arrays may come from files whose texture seams repeat positions: weld them for the check (a Mesh
    # was already reduced to its geometry without seams).
    if (
        topology(va, fa, weld=isinstance(a, tuple)).watertight
        and topology(vb, fb, weld=isinstance(b, tuple)).watertight
    ):
        iou = volume_iou(va, fa, vb, fb, config.volume_samples, config.seed + 2)
    return {
        "chamfer_l1_mm": float((d_ab.mean() + d_ba.mean()) / 2 * 1000),
        "chamfer_l2_mm2": float((np.mean(d_ab**2) + np.mean(d_ba**2)) / 2 * 1e6),
        "p2s_a_to_b_mm": float(d_ab.mean() * 1000),
        "p2s_b_to_a_mm": float(d_ba.mean() * 1000),
        "normal_consistency": float((consistency_ab + consistency_ba) / 2),
        "precision": precision,
        "recall": recall,
        "fscore": float(fscore),
        "tau_mm": config.tau * 1000,
        "iou": float(iou),
    }


def volume_iou(
    va: np.ndarray, fa: np.ndarray, vb: np.ndarray, fb: np.ndarray, samples: int = 200_000, seed: int = 2
) -> float:
    """Volumetric IoU of two watertight meshes by uniform samples in the union of their bounding boxes."""
    low = np.minimum(va.min(axis=0), vb.min(axis=0))
    high = np.maximum(va.max(axis=0), vb.max(axis=0))
    points = low + np.random.default_rng(seed).random((samples, 3)) * (high - low)
    in_a, in_b = inside(va, fa, points), inside(vb, fb, points)
    union = np.sum(in_a | in_b)
    return float(np.sum(in_a & in_b) / union) if union else math.nan


def surface_error_mm(a, b, samples: int = 100_000, seed: int = 0) -> float:
    """The mean symmetric surface error (Chamfer-L1, point-to-surface) in mm, without the other metrics."""
    va, fa = _as_arrays(a, "a")
    vb, fb = _as_arrays(b, "b")
    d_ab, _ = closest_points(vb, fb, sample_surface(va, fa, samples, seed)[0])
    d_ba, _ = closest_points(va, fa, sample_surface(vb, fb, samples, seed + 1)[0])
    return float((d_ab.mean() + d_ba.mean()) / 2 * 1000)

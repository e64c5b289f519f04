"""Metrics on analytic cases: concentric spheres, identical meshes, shifted boxes; determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh
from mould.recon.mesh import Mesh
from mould.recon.metrics import MetricConfig, compare_meshes, sample_surface, surface_error_mm

FAST = MetricConfig(samples=20_000, volume_samples=100_000)


def sphere(radius: float, subdivisions: int = 6) -> tuple[np.ndarray, np.ndarray]:
    shape = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return shape.vertices, shape.faces


def test_identical_meshes_score_perfectly():
    mesh = sphere(0.3, 4)
    metrics = compare_meshes(mesh, mesh, FAST)
    # Samples lie on the very triangles they are measured against: float32 round-off only.
    assert metrics["chamfer_l1_mm"] < 1e-4 and metrics["chamfer_l2_mm2"] < 1e-8
    assert metrics["normal_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["fscore"] == 1.0 and metrics["iou"] == pytest.approx(1.0)


def test_concentric_spheres_give_their_gap():
    radius, gap = 0.5, 0.004
    inner, outer = sphere(radius), sphere(radius + gap)
    metrics = compare_meshes(inner, outer, FAST)
    # An icosphere of level 6 has edges of ~0.016 rad: its facets sag below the true sphere by at most
    # r (1 - cos(0.016 / sqrt(3))) ~ 0.02 mm, and both spheres sag alike; so the distance is the gap to 0.03 mm.
    for key in ("p2s_a_to_b_mm", "p2s_b_to_a_mm", "chamfer_l1_mm"):
        assert metrics[key] == pytest.approx(gap * 1000, abs=0.03)
    assert metrics["chamfer_l2_mm2"] == pytest.approx((gap * 1000) ** 2, rel=0.02)
    assert metrics["normal_consistency"] > 0.999
    # IoU of the balls: (r / (r + gap))^3; the volume samples' std. error is ~0.002, facets shrink both alike.
    assert metrics["iou"] == pytest.approx((radius / (radius + gap)) ** 3, abs=0.01)


@pytest.mark.parametrize("tau_mm, expected", [(3.0, 0.0), (5.0, 1.0)])
def test_fscore_switches_at_the_gap(tau_mm, expected):
    metrics = compare_meshes(sphere(0.5), sphere(0.504), MetricConfig(samples=5_000, tau=tau_mm / 1000))
    assert metrics["fscore"] == expected and metrics["tau_mm"] == tau_mm


def test_shifted_box_iou():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    shifted = box.copy()
    shifted.apply_translation((0.25, 0.0, 0.0))
    metrics = compare_meshes((box.vertices, box.faces), (shifted.vertices, shifted.faces), FAST)
    # Overlap 0.75, union 1.25; 100k samples in a 1.25 box: std. error ~0.0015.
    assert metrics["iou"] == pytest.approx(0.6, abs=0.006)


def test_open_mesh_has_no_iou_but_other_metrics():
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    metrics = compare_meshes((box.vertices, box.faces[:-2]), (box.vertices, box.faces), FAST)
    assert math.isnan(metrics["iou"])
    assert metrics["p2s_a_to_b_mm"] < 1e-3 and metrics["p2s_b_to_a_mm"] > 1


def test_sampling_is_deterministic_and_uniform():
    vertices, faces = sphere(1.0, 3)
    first, ids = sample_surface(vertices, faces, 1000, seed=7)
    again, _ = sample_surface(vertices, faces, 1000, seed=7)
    other, _ = sample_surface(vertices, faces, 1000, seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Uniform over the area: a box of 1 x 1 x 4 m gets 2/18 of its samples on the two 1 x 1 ends.
    box = trimesh.creation.box(extents=(1.0, 1.0, 4.0))
    points, _ = sample_surface(box.vertices, box.faces, 90_000, seed=0)
    ends = np.mean(np.abs(np.abs(points[:, 2]) - 2) < 1e-9)
    assert ends == pytest.approx(2 / 18, abs=0.005)
    assert compare_meshes((vertices, faces), sphere(1.01, 3), FAST) == compare_meshes(
        (vertices, faces), sphere(1.01, 3), FAST
    )


def test_surface_error_matches_chamfer_and_mesh_inputs():
    inner, outer = sphere(0.5, 5), sphere(0.51, 5)
    mesh = Mesh(vertices=inner[0], faces=inner[1])
    assert surface_error_mm(mesh, outer, samples=20_000) == pytest.approx(
        compare_meshes(mesh, outer, FAST)["chamfer_l1_mm"], rel=1e-6
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="no faces"):
        compare_meshes((np.zeros((3, 3)), np.zeros((0, 3), int)), sphere(1.0, 1))
    with pytest.raises(ValueError, match="tau"):
        MetricConfig(tau=0)

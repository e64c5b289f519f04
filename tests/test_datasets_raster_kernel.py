"""The compiled z-buffer (numba, the CPU's path) against the torch one (the GPU's): the same keys, bit for bit.

Both compute the same float operations in the same order, so equality is exact, not within a tolerance:
a generated sample must not depend on which path rendered it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st
from mould.datasets import raster, raster_kernel

from mould.framing import frame_points

pytestmark = pytest.mark.skipif(not raster_kernel.available(), reason="numba is not installed")


def both_paths(vertices, faces, scene, intrinsics, n, orthographic=False, hidden=True):
    """(compiled, torch) results of ``raster._reduce`` on the same input."""
    args = (vertices, faces, scene, intrinsics, n, orthographic, hidden, raster.DEFAULT_CHUNK)
    compiled = raster._reduce(*args)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(raster_kernel, "available", lambda: False)
        reference = raster._reduce(*args)
    return compiled, reference


def assert_same_keys(compiled, reference) -> None:
    for ours, theirs in zip(compiled[:2], reference[:2]):
        if theirs is None:
            assert ours is None
            continue
        differ = int((ours != theirs).sum())
        assert differ == 0, f"{differ} of {len(theirs)} keys differ"
    assert bool((reference[0] != raster.NO_HIT).any()), "nothing was hit: the comparison proves nothing"


def test_a_clothed_scene_gives_the_torch_keys():
    """A generated scene (body, garments, hair; ~40k triangles) through its own camera, float32 as generated."""
    from mould.datasets.dressing import dress
    from mould.datasets.scenes import draw_scene
    from mould.datasets.synthetic import SynthConfig

    dressed = dress([draw_scene(4, 1, SynthConfig(resolution=128))])
    vertices, used = dressed.vertices, dressed.used.numpy()
    scene = torch.zeros(len(dressed.faces), dtype=torch.int64)
    for yaw, kind in ((10.0, "perspective"), (100.0, "orthographic")):
        camera = frame_points(vertices.double().numpy()[used], 160, kind=kind, yaw_deg=yaw, elevation_deg=5)
        points = torch.as_tensor(camera.to_camera(vertices.double().numpy()), dtype=torch.float32)
        intrinsics = torch.tensor([[camera.focal, camera.cx, camera.cy]], dtype=torch.float32)
        orthographic = kind == "orthographic"
        for hidden in (True, False):
            assert_same_keys(*both_paths(points, dressed.faces, scene, intrinsics, 160, orthographic, hidden))


def test_a_batch_in_float64_gives_the_torch_keys():
    """Three scenes at once (a sphere, a box, a torus), float64: depths are still rounded to the keys' float32."""
    meshes = [
        trimesh.creation.icosphere(subdivisions=3, radius=0.4),
        trimesh.creation.box(extents=(0.6, 0.3, 0.5)),
        trimesh.creation.torus(major_radius=0.5, minor_radius=0.15),
    ]
    offset, points, faces, scenes, intrinsics = 0, [], [], [], []
    for b, mesh in enumerate(meshes):
        camera = frame_points(np.asarray(mesh.vertices), 48, yaw_deg=40.0 * b, elevation_deg=20)
        points.append(torch.as_tensor(camera.to_camera(np.asarray(mesh.vertices))))
        faces.append(torch.as_tensor(np.asarray(mesh.faces)) + offset)
        scenes.append(torch.full((len(mesh.faces),), b))
        intrinsics.append([camera.focal, camera.cx, camera.cy])
        offset += len(mesh.vertices)
    args = torch.cat(points), torch.cat(faces), torch.cat(scenes), torch.tensor(intrinsics, dtype=torch.float64)
    assert_same_keys(*both_paths(*args, 48))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    count=st.integers(1, 60),
    scale=st.sampled_from([0.05, 0.3, 1.0]),
    snap=st.booleans(),
    orthographic=st.booleans(),
)
def test_random_triangle_soups_give_the_torch_keys(seed, count, scale, snap, orthographic):
    """Triangles of every size (``scale`` of the screen), some off screen, some degenerate (a repeated corner),
    and with ``snap`` vertices on pixel centres and depths on a coarse grid, so that edge functions are exactly
    zero on pixel centres and depths tie."""
    rng = np.random.default_rng(seed)
    n, focal = 32, 32.0  # a power of two: orthographic snapped vertices project exactly onto pixel centres
    uv = n / 2 + rng.uniform(-0.8 * n, 0.8 * n, (2 * count, 2)) * scale
    depth = rng.uniform(1.0, 3.0, 2 * count)
    if snap:
        uv, depth = np.round(uv), np.round(depth, 1)
    xy = (uv - n / 2) / focal * (1.0 if orthographic else depth[:, None])
    vertices = torch.tensor(np.column_stack([xy, depth]), dtype=torch.float32)
    faces = rng.integers(0, 2 * count, (count, 3))
    repeated = rng.random(count) < 0.1
    faces[repeated, 2] = faces[repeated, 1]
    intrinsics = torch.tensor([[focal, n / 2, n / 2]])
    scene = torch.zeros(count, dtype=torch.int64)
    compiled, reference = both_paths(vertices, torch.as_tensor(faces), scene, intrinsics, n, orthographic)
    for ours, theirs in zip(compiled[:2], reference[:2]):
        assert torch.equal(ours, theirs)


def test_without_numba_the_torch_path_renders(monkeypatch):
    """A machine without numba (the GPU machine carries the package alone) renders with torch, the same."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    camera = frame_points(np.asarray(sphere.vertices), 40, yaw_deg=30.0)
    args = (torch.as_tensor(camera.to_camera(np.asarray(sphere.vertices)), dtype=torch.float32),
            torch.as_tensor(np.asarray(sphere.faces)), torch.zeros(len(sphere.faces), dtype=torch.int64),
            torch.tensor([[camera.focal, camera.cx, camera.cy]], dtype=torch.float32), 40)  # fmt: skip
    compiled = raster.rasterize(*args)
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    raster_kernel._compiled.cache_clear()
    try:
        assert not raster_kernel.available()
        fallback = raster.rasterize(*args)
    finally:
        raster_kernel._compiled.cache_clear()
    assert bool(compiled.mask.any())
    for field in ("mask", "visible", "hidden", "visible_face", "hidden_face", "visible_normals"):
        assert torch.equal(getattr(compiled, field), getattr(fallback, field)), field


def test_with_numba_jit_disabled_the_torch_path_runs(monkeypatch):
    """NUMBA_DISABLE_JIT=1 (a debugging switch) would run the loop in pure Python, minutes a sample: the
    torch path runs instead."""
    import numba

    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    raster_kernel._compiled.cache_clear()
    try:
        assert not raster_kernel.available()
    finally:
        raster_kernel._compiled.cache_clear()

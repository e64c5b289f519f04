"""The depth parametrisation the network predicts in, and normals from depth maps (mould.models.depth)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import sphere_maps
from mould.models.depth import (
    depth_normals,
    depth_to_relative,
    extend_outside,
    reference_depth,
    relative_to_depth,
)
from mould.models.losses import normal_valid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_reference_is_the_lower_median_inside_the_mask(rng):
    visible = torch.from_numpy(rng.uniform(1, 5, (3, 1, 16, 16)))
    mask = torch.from_numpy(rng.random((3, 1, 16, 16)) < 0.4)
    mask[2] = False
    reference = reference_depth(visible, mask)
    for i in range(2):
        assert reference[i] == torch.median(visible[i][mask[i]])  # torch's median is the lower one
    assert reference[2] == 0


def test_reference_checks_shapes():
    with pytest.raises(ValueError, match="mask"):
        reference_depth(torch.ones(2, 1, 8, 8), torch.ones(2, 1, 8, 4))
    with pytest.raises(ValueError, match="visible"):
        reference_depth(torch.ones(2, 2, 8, 8), torch.ones(2, 2, 8, 8))


def test_relative_depth_round_trip():
    depth = torch.rand(2, 1, 8, 8, dtype=torch.float64) + 2
    reference = torch.tensor([2.5, 3.0], dtype=torch.float64)
    relative = depth_to_relative(depth, reference, 0.5)
    assert torch.allclose(relative[1], (depth[1] - 3.0) / 0.5)
    torch.testing.assert_close(relative_to_depth(relative, reference, 0.5), depth)
    torch.testing.assert_close(relative_to_depth(relative, 2.5, 0.5)[0], depth[0])
    with pytest.raises(ValueError, match="reference"):
        depth_to_relative(depth, torch.ones(3), 0.5)


def test_extend_outside_keeps_inside_and_fills_everything():
    values = torch.arange(64.0).reshape(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., 2:4, 2:5] = True
    filled = extend_outside(values, mask)
    assert torch.equal(filled[mask], values[mask])
    assert torch.all(filled >= values[mask].min()) and torch.all(filled <= values[mask].max())
    # A constant inside continues as that constant; an empty mask gives zeros.
    assert torch.all(extend_outside(torch.where(mask, 7.0, -1.0), mask) == 7.0)
    assert torch.all(extend_outside(values, torch.zeros_like(mask)) == 0)
    # Odd sides go through ceil-mode pooling.
    odd = extend_outside(torch.ones(2, 3, 7, 5), torch.rand(2, 1, 7, 5) > 0.7)
    assert odd.shape == (2, 3, 7, 5) and torch.all(odd == 1)


@pytest.mark.parametrize("perspective", [True, False])
def test_normals_of_a_tilted_plane_are_exact(perspective):
    # Plane n . p = c with n = (0.3, -0.2, -0.93...) facing the camera. Perspective: z = c / (n . ray);
    # orthographic: z = (c - n_x x - n_y y) / n_z.
    side, focal, centre = 16, 20.0, 7.5
    normal = torch.tensor([0.3, -0.2, -math.sqrt(1 - 0.13)], dtype=torch.float64)
    c = -2.0 * math.sqrt(1 - 0.13)
    v, u = torch.meshgrid(
        torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64), indexing="ij"
    )
    x, y = (u - centre) / focal, (v - centre) / focal
    if perspective:
        depth = c / (normal[0] * x + normal[1] * y + normal[2])
    else:
        depth = (c - normal[0] * x - normal[1] * y) / normal[2]
    intrinsics = torch.tensor([[focal, centre, centre]], dtype=torch.float64)
    normals = depth_normals(depth[None, None], intrinsics, torch.tensor([perspective]), facing="towards")
    torch.testing.assert_close(normals[0], normal[:, None, None].expand(3, side, side), rtol=0, atol=1e-12)
    back = depth_normals(depth[None, None], intrinsics, torch.tensor([perspective]), facing="away")
    torch.testing.assert_close(back, -normals)


@pytest.mark.parametrize("perspective", [True, False])
def test_normals_of_a_sphere_point_out_of_it(perspective):
    side, radius, distance = 128, 0.3, 2.0
    focal = side * 2.2 if perspective else side / 0.7
    visible, hidden, mask, camera = sphere_maps(
        side, radius=radius, distance=distance, focal=focal, perspective=perspective
    )
    intrinsics = torch.tensor([camera], dtype=torch.float64)
    flag = torch.tensor([perspective])
    centre = torch.tensor([0.0, 0.0, distance], dtype=torch.float64)[:, None, None]
    for depth, facing in ((visible, "towards"), (hidden, "away")):
        from mould.models.depth import depth_to_points

        points = depth_to_points(depth[None, None], intrinsics, flag)[0]
        exact = (points - centre) / radius
        normals = depth_normals(depth[None, None], intrinsics, flag, facing=facing)[0]
        valid = normal_valid(depth[None, None], mask[None, None], 0.05)[0, 0]
        cosine = (normals * exact).sum(0)[valid]
        # Central differences are second-order accurate: the worst pixels, at grazing angles near the
        # rim, are a few degrees off; the bulk is within a tenth of a degree.
        assert cosine.min() > math.cos(math.radians(10))
        assert cosine.median() > math.cos(math.radians(0.1))

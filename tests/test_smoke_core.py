"""Quick end-to-end check of the core: a sphere's mould has the analytic depths at its centre."""

import trimesh

from mould import frame_points, mesh_to_mould


def test_sphere_centre_depths():
    # A UV sphere has vertices at its poles; an odd crop puts a pixel centre exactly on the optical axis,
    # which passes through both poles, so the hits are exact up to float32 round-off.
    radius, distance = 0.5, 2.5
    sphere = trimesh.creation.uv_sphere(radius=radius, count=[64, 64])
    camera = frame_points(sphere.vertices, 255, distance=distance)
    mould = mesh_to_mould(sphere.vertices, sphere.faces, camera)
    centre = 127
    assert abs(mould.visible[centre, centre] - (distance - radius)) < 1e-4
    assert abs(mould.hidden[centre, centre] - (distance + radius)) < 1e-4
    assert not mould.mask[0, 0]

"""MakeHuman's garments in the generator: the .mhclo reader and fit, the binding round trip, the shipped
wardrobe on real anny bodies, and the draws that dress people in it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from mould.datasets.wardrobe import BoundGarment, hidden_faces, wardrobe, wrap
from tool_modules import load_tool

MHCLO = """# This is a clothes file for MakeHuman
uuid 00000000-0000-0000-0000-000000000000
basemesh hm08
name cube
obj_file cube.obj
x_scale 0 1 1.0000
y_scale 0 2 4.0000
z_scale 0 3 1.0000
verts 0
material cube.mhmat
0 1 2 0.5 0.25 0.25 0.1 0.2 0.3
3
1 2 3 0.2 0.3 0.5 0.0 0.0 -0.5
0 1 3 1.0 0.0 0.0 0.0 0.0 0.0

delete_verts
1 - 3 5
7
"""

OBJ = """v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
f 1/1 2/2 3/3 4/4
"""


def test_a_proxy_file_is_read_and_fitted_as_makehuman_does(tmp_path):
    tool = load_tool("makehuman_garments")
    (tmp_path / "cube.mhclo").write_text(MHCLO)
    (tmp_path / "cube.obj").write_text(OBJ)
    proxy = tool.read_proxy(tmp_path / "cube.mhclo")
    np.testing.assert_array_equal(proxy.references, [[0, 1, 2], [3, 3, 3], [1, 2, 3], [0, 1, 3]])
    np.testing.assert_array_equal(proxy.deleted, [1, 2, 3, 5, 7])
    np.testing.assert_array_equal(proxy.faces, [[0, 1, 2], [0, 2, 3]])  # the quad fanned
    base = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 3]], dtype=np.float64)
    fitted = tool.fit(proxy, base)
    # Offsets scale by the body's size on each axis: x 2/1, y 2/4, z 3/1.
    np.testing.assert_allclose(fitted[0], 0.5 * base[0] + 0.25 * base[1] + 0.25 * base[2] + [0.2, 0.1, 0.9])
    np.testing.assert_allclose(fitted[1], base[3])
    np.testing.assert_allclose(fitted[2], 0.2 * base[1] + 0.3 * base[2] + 0.5 * base[3] + [0, 0, -1.5])
    np.testing.assert_allclose(fitted[3], base[0])


def test_a_proxy_whose_mesh_does_not_match_is_refused(tmp_path):
    tool = load_tool("makehuman_garments")
    (tmp_path / "cube.mhclo").write_text(MHCLO.replace("0 1 3 1.0 0.0 0.0 0.0 0.0 0.0\n", ""))
    (tmp_path / "cube.obj").write_text(OBJ)
    with pytest.raises(ValueError, match="3 fitted vertices for 4"):
        tool.read_proxy(tmp_path / "cube.mhclo")


def _sphere() -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=0.2, resolution=12)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


def _bound(binding: dict[str, np.ndarray]) -> BoundGarment:
    return BoundGarment(
        name="test", kind="suit", style="", faces=torch.zeros((0, 3), dtype=torch.int64),
        triangle=torch.as_tensor(binding["triangle"], dtype=torch.int64),
        barycentric=torch.as_tensor(binding["barycentric"]), lift=torch.as_tensor(binding["lift"]),
        residual=torch.as_tensor(binding["residual"]), hidden=torch.zeros(0, dtype=torch.int64),
        lower=torch.zeros(0, dtype=torch.bool),
    )  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), angle=st.floats(-3.0, 3.0))
def test_a_binding_rebuilds_its_points_and_moves_rigidly_with_the_body(seed, angle):
    """The tool's binding (numpy, open3d's closest points) and the generator's rebuild (torch) agree: points
    2-40 mm off a sphere come back where they were, and a rotated, moved sphere carries them along."""
    tool = load_tool("makehuman_garments")
    from mould.datasets.shells import vertex_normals

    vertices, faces = _sphere()
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(50, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    points = directions * (0.2 + rng.uniform(0.002, 0.04, size=(50, 1)))
    binding = tool.bind(points, vertices, faces)
    binding.pop("direction")
    garment, faces_t = _bound(binding), torch.as_tensor(faces)
    body = torch.as_tensor(vertices, dtype=torch.float32)[None]
    rebuilt = wrap(garment, body, vertex_normals(body, faces_t), faces_t)[0].numpy()
    np.testing.assert_allclose(rebuilt, points, atol=2e-5)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    shift = np.array([0.3, -1.0, 2.0])
    moved = torch.as_tensor(vertices @ rotation.T + shift, dtype=torch.float32)[None]
    carried = wrap(garment, moved, vertex_normals(moved, faces_t), faces_t)[0].numpy()
    np.testing.assert_allclose(carried, points @ rotation.T + shift, atol=3e-5)


def test_hidden_faces_are_those_with_three_hidden_corners():
    faces = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    garment = _bound({"triangle": np.zeros(0, np.int32), "barycentric": np.zeros((0, 3), np.float32),
                      "lift": np.zeros(0, np.float32), "residual": np.zeros((0, 3), np.float32)})  # fmt: skip
    shoe = BoundGarment(**{**garment.__dict__, "hidden": torch.tensor([1, 2])})
    sock = BoundGarment(**{**garment.__dict__, "hidden": torch.tensor([3])})
    assert hidden_faces([shoe], faces).tolist() == [False, False, False]
    assert hidden_faces([shoe, sock], faces).tolist() == [False, True, False]
    assert not hidden_faces([], faces).any()


def test_the_shipped_garments_dress_a_real_anny_body_where_they_belong():
    """Every garment, rebuilt on anny's rest body, lies outside the skin, where its kind is worn: shoes on the
    feet, hats and hair on the head (long hair down the back), suits from the ankles (or the knees) to the
    neck; halves split shirt from trousers."""
    import open3d as o3d
    from mould.datasets.atlas import atlas_tensors
    from mould.datasets.shells import vertex_normals

    atlas = atlas_tensors(torch.device("cpu"))
    body = atlas.rest[None]
    normals = vertex_normals(body, atlas.faces)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(atlas.rest.numpy(), atlas.faces.numpy().astype(np.uint32))
    height = float(atlas.rest[:, 1].max())
    garments = wardrobe()
    assert {g.kind for g in garments.values()} == {"suit", "shoes", "hat", "hair"} and len(garments) == 26
    assert {g.style for g in garments.values() if g.kind == "hair"} == {
        "short",
        "curly",
        "bob",
        "long",
        "ponytail",
    }
    for name, garment in garments.items():
        assert int(garment.triangle.max()) < len(atlas.faces) and all(garment.hidden < len(body[0]))
        assert int(garment.faces.max()) == len(garment.triangle) - 1 and len(garment.lower) == len(garment.faces)
        points = wrap(garment, body, normals, atlas.faces)[0]
        # Bound at least 2 mm out along the skin's interpolated normal; where that normal turns into the body
        # (the neck's folds, around the ears) a vertex lifted by those 2 mm can stay inside: 3 of 8,426 of
        # one suit, 23 of 5,203 of a bob, never deeper than the 2 mm.
        inside = scene.compute_occupancy(o3d.core.Tensor(points.numpy())).numpy() > 0
        assert inside.mean() < 0.01, name
        if inside.any():
            assert scene.compute_distance(o3d.core.Tensor(points.numpy()[inside])).numpy().max() < 0.0025, name
        low, high = float(points[:, 1].min()) / height, float(points[:, 1].max()) / height
        if garment.kind == "shoes":
            assert low < 0.01 and high < 0.15 and garment.lower.all(), name
        elif garment.kind == "hat":
            assert low > 0.85 and high > 0.95 and not garment.lower.any(), name
        elif garment.kind == "hair":
            assert low > {"short": 0.85, "curly": 0.85, "bob": 0.75}.get(garment.style, 0.5) and high > 0.97, name
        else:
            assert low < 0.45 and 0.8 < high < 0.9, name
            upper = garment.faces[~garment.lower].reshape(-1)
            lower = garment.faces[garment.lower].reshape(-1)
            assert points[upper, 1].median() > points[lower, 1].median() + 0.2 * height, name


def test_wardrobe_draws_change_only_the_outfits():
    from mould.datasets.scenes import draw_scene
    from mould.datasets.synthetic import SynthConfig

    dressed = [draw_scene(21, i, SynthConfig(wardrobe=1.0)) for i in range(8)]
    plain = [draw_scene(21, i, SynthConfig(wardrobe=0.0)) for i in range(8)]
    for a, b in zip(dressed, plain):
        assert a.phenotype == b.phenotype and a.yaw == b.yaw
        assert a.hairstyle.style == b.hairstyle.style and a.hairstyle.material == b.hairstyle.material
        assert not b.hairstyle.asset
        if a.hairstyle.style in ("bald", "bun"):  # no mesh of these styles
            assert a.hairstyle == b.hairstyle
        else:
            assert wardrobe()[a.hairstyle.asset].style == a.hairstyle.style
        assert all(not g.asset for outfit in b.outfits for g in outfit)
        for outfit in a.outfits:
            tops = [g.asset for g in outfit if g.kind == "top"]
            trousers = [g.asset for g in outfit if g.kind == "trousers"]
            assert tops == trousers and len(tops) == 1 and wardrobe()[tops[0]].kind == "suit"
            assert {g.kind for g in outfit} <= {"top", "trousers", "shoes", "hat"}


def test_a_person_in_a_modelled_suit_is_rendered_and_recorded():
    from mould.datasets.synthetic import SynthConfig, generate_batch

    config = SynthConfig(resolution=64, wardrobe=1.0)
    (mould, image, params), (plain, _, plain_params) = (
        generate_batch([3], 8, config)[0],
        generate_batch([3], 8, SynthConfig(resolution=64, wardrobe=0.0))[0],
    )
    assert mould.mask.sum() > 200 and image.shape == (64, 64, 3)
    assets = {g["asset"] for g in params["outfit"]} - {""}
    assert assets and not {g["asset"] for g in plain_params["outfit"]} - {""}
    assert (mould.mask != plain.mask).any()  # the modelled suit's outline is not the procedural outfit's


def test_a_folder_of_one_wardrobe_share_is_not_topped_up_with_another(tmp_path):
    from mould.datasets.synth_folder import synthesize
    from mould.datasets.synthetic import SynthConfig

    from mould.errors import InputError

    synthesize(tmp_path / "data", 1, 5, SynthConfig(resolution=32, wardrobe=0.0), progress=False)
    with pytest.raises(InputError, match="wardrobe = 0.0, not 0.4"):
        synthesize(tmp_path / "data", 2, 5, SynthConfig(resolution=32), progress=False)
    assert len(list((tmp_path / "data").glob("*.npz"))) == 1  # nothing written

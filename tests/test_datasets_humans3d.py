"""3D HUMANS-style loader on fixture folders: crops, moulds, image alignment, caching, bad frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mould.camera import look_at
from mould.errors import InputError

WIDTH, HEIGHT = 200, 150
INTRINSICS = np.array([[180.0, 0, 97.0], [0, 180.0, 80.0], [0, 0, 1]])
MARK = np.array([0.05, 1.6, 0.0])  # a world point painted into every frame


def write_tree(root, yaws=(0.0, 50.0), *, half=False):
    import imageio.v3 as iio
    import trimesh

    root.mkdir(parents=True, exist_ok=True)
    (root / "humans3d.json").write_text(json.dumps({"format": "mould-humans3d", "version": 1}))
    sequence = root / "alice"
    (sequence / "frames").mkdir(parents=True)
    (sequence / "cameras").mkdir()
    body = trimesh.creation.capsule(height=1.2, radius=0.25)
    body.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    body.apply_translation([0, 0.85, 0])
    body.export(sequence / "mesh.ply")
    for i, yaw in enumerate(yaws):
        eye = np.array([4 * np.sin(np.radians(yaw)), 1.0, 4 * np.cos(np.radians(yaw))])
        cam_to_world = look_at(eye, np.array([0.3, 0.9, 0.0]))
        intrinsics = INTRINSICS.copy()
        if half:
            intrinsics[:2, 2] += 0.5
        camera = {"intrinsics": intrinsics.tolist(), "cam_to_world": cam_to_world.tolist()}
        if half:
            camera["pixel_centres"] = "half"
        (sequence / "cameras" / f"f{i}.json").write_text(json.dumps(camera))
        image = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        world_to_cam = np.linalg.inv(cam_to_world)
        p = world_to_cam[:3, :3] @ MARK + world_to_cam[:3, 3]
        u, v = INTRINSICS[0, 0] * p[0] / p[2] + INTRINSICS[0, 2], INTRINSICS[1, 1] * p[1] / p[2] + INTRINSICS[1, 2]
        image[int(round(v)) - 1 : int(round(v)) + 2, int(round(u)) - 1 : int(round(u)) + 2] = [255, 0, 0]
        iio.imwrite(sequence / "frames" / f"f{i}.png", image)
    return root, np.asarray(body.vertices), np.asarray(body.faces)


def test_frames_become_moulds_of_their_mesh(tmp_path):
    from mould.datasets.humans3d import Humans3DDataset
    from mould.datasets.records import record_to_mould

    from mould.encode import encode_mesh

    root, vertices, faces = write_tree(tmp_path / "h3d")
    dataset = Humans3DDataset(root, resolution=64)
    assert len(dataset) == 2
    for i in range(2):
        mould = record_to_mould(dataset[i])
        expected = encode_mesh(vertices, faces, mould.camera, normals=True).mould
        assert np.array_equal(mould.mask, expected.mask)
        assert np.allclose(mould.visible, expected.visible, atol=1e-5)
        # Framed with a margin: the silhouette spans 80 % of the crop along its longer side.
        rows, columns = np.nonzero(mould.mask)
        span = max(rows.max() - rows.min(), columns.max() - columns.min()) + 1
        assert 0.75 * 64 <= span <= 0.85 * 64
        # The crop's image agrees with its camera: the painted mark lands where the camera projects it.
        uv, _ = mould.camera.project(MARK[None])
        red = np.nonzero((mould.image[..., 0] > 150) & (mould.image[..., 1] < 100))
        assert abs(red[1].mean() - uv[0, 0]) < 0.6 and abs(red[0].mean() - uv[0, 1]) < 0.6


def test_half_pixel_centres_are_shifted(tmp_path):
    from mould.datasets.humans3d import Humans3DDataset

    integer = Humans3DDataset(write_tree(tmp_path / "a")[0], resolution=48)
    half = Humans3DDataset(write_tree(tmp_path / "b", half=True)[0], resolution=48)
    assert np.allclose(integer[0]["intrinsics"], half[0]["intrinsics"])
    assert np.array_equal(integer[0]["mask"], half[0]["mask"])


def test_moulds_are_cached_and_bad_cache_entries_recomputed(tmp_path, monkeypatch):
    from mould.datasets.humans3d import Humans3DDataset

    root, _, _ = write_tree(tmp_path / "h3d")
    first = Humans3DDataset(root, resolution=48)[1]
    cache = root / ".mould_cache" / "r48"
    assert sorted(p.name for p in cache.glob("*.json")) == ["alice__f1.json"]
    again = Humans3DDataset(root, resolution=48)
    monkeypatch.setattr(again, "compute_mould", lambda *a: (_ for _ in ()).throw(AssertionError("not cached")))
    assert np.array_equal(again[1]["visible"], first["visible"])
    (cache / "alice__f1.npz").write_bytes(b"broken")
    fresh = Humans3DDataset(root, resolution=48)
    assert np.array_equal(fresh[1]["visible"], first["visible"])  # recomputed, cache repaired


def test_bad_frames_are_skipped_and_bad_trees_refused(tmp_path, caplog):
    from mould.datasets.humans3d import Humans3DDataset

    root, _, _ = write_tree(tmp_path / "h3d", yaws=(0.0, 30.0, 60.0))
    (root / "alice" / "cameras" / "f1.json").write_text("{ nope")
    (root / "alice" / "frames" / "f2.png").write_bytes(b"\x89PNG truncated")
    dataset = Humans3DDataset(root, resolution=32, cache_dir=tmp_path / "cache")
    with caplog.at_level("WARNING"):
        records = [dataset[i] for i in range(3)]
    assert [int(r["skipped"]) for r in records] == [0, 2, 1]  # f1 -> f2 (bad) -> f0; f2 -> f0
    assert len(dataset.bad) == 2 and "f1.json" in caplog.text and "f2" in caplog.text
    with pytest.raises(InputError, match="humans3d.json"):
        Humans3DDataset(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "humans3d.json").write_text(json.dumps({"format": "mould-humans3d", "version": 1}))
    with pytest.raises(InputError, match="no frames"):
        Humans3DDataset(tmp_path / "other")


def test_open_dataset_recognises_each_layout(tmp_path):
    from mould.datasets.folder import SampleFolder
    from mould.datasets.humans3d import Humans3DDataset
    from mould.datasets.mixing import mix_datasets, open_dataset

    root, _, _ = write_tree(tmp_path / "h3d")
    humans = open_dataset(root, resolution=32)
    assert isinstance(humans, Humans3DDataset)
    humans[0]  # computes and caches frame 0
    cached = open_dataset(root / ".mould_cache" / "r32")
    assert isinstance(cached, SampleFolder)  # the cache is itself a folder of samples
    mixed = mix_datasets([(humans, 1.0), (cached, 1.0)], length=4)
    assert mixed[0]["image"].shape == (3, 32, 32)

"""SURREAL loader against fixture files written in SURREAL's exact format, and the minimal SMPL forward.

The fixture's depth is rendered here independently of the loader: with the official getExtrinsicBlender
formulas written out, Blender's half-integer pixel centres and distances along the rays (Cycles' Z pass).
The loader must convert all of that back and agree with its own SMPL ray cast in the crop.
"""

from __future__ import annotations

import numpy as np
import pytest
from mould.datasets.smpl import axis_angle_to_matrix, load_smpl, smpl_joints, smpl_vertices

from mould.errors import InputError

SMPL_PARENTS = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def write_fake_smpl(path, *, chain: bool = False):
    """A tiny SMPL-format model: an ellipsoid 'body' 1.7 m tall, 24 joints, 10 shape coefficients.

    Shape coefficient 0 scales the body by 10 % per unit; with ``chain``, the vertices above the waist
    follow joint 3 (spine), the rest the root.
    """
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2)
    vertices = np.asarray(sphere.vertices) * [0.22, 0.85, 0.14]
    count = len(vertices)
    regressor = np.zeros((24, count))
    regressor[:, :] = 1.0 / count  # every joint at the centre ...
    upper = vertices[:, 1] > 0.1
    regressor[3] = np.where(upper, 1.0, 0.0) / upper.sum() * 0 + 0  # ... except the spine, set below
    regressor[3, np.argmin(np.abs(vertices[:, 1] - 0.1))] = 1.0
    weights = np.zeros((count, 24))
    weights[:, 0] = 1.0
    if chain:
        weights[upper, 0], weights[upper, 3] = 0.0, 1.0
    shapedirs = np.zeros((count, 3, 10))
    shapedirs[:, :, 0] = vertices * 0.1
    kintree = np.array([SMPL_PARENTS, list(range(24))], dtype=np.int64)
    kintree[0, 0] = 4294967295
    np.savez(
        path,
        v_template=vertices,
        shapedirs=shapedirs,
        posedirs=np.zeros((count, 3, 207)),
        J_regressor=regressor,
        weights=weights,
        kintree_table=kintree,
        f=np.asarray(sphere.faces),
    )
    return path


def test_smpl_forward(tmp_path):
    model = load_smpl(write_fake_smpl(tmp_path / "smpl.npz", chain=True))
    rest, joints = smpl_vertices(model, np.zeros(72), np.zeros(10))
    assert np.allclose(rest, model.v_template) and np.allclose(joints, model.J_regressor @ model.v_template)
    bigger, _ = smpl_vertices(model, np.zeros(72), np.array([1.0]))
    assert np.allclose(bigger, model.v_template * 1.1)
    # Root rotation turns the whole body about the root joint; translation moves it.
    pose = np.zeros(72)
    pose[:3] = [0, np.pi / 2, 0]
    turned, _ = smpl_vertices(model, pose, np.zeros(10), translation=np.array([1.0, 2.0, 3.0]))
    root = joints[0]
    expected = (model.v_template - root) @ axis_angle_to_matrix(pose[:3]).T + root + [1, 2, 3]
    assert np.allclose(turned, expected)
    # A spine rotation moves only the upper body, about the spine joint.
    pose = np.zeros(72)
    pose[9:12] = [0.5, 0, 0]
    bent, bent_joints = smpl_vertices(model, pose, np.zeros(10))
    upper = model.weights[:, 3] > 0
    spine = joints[3]
    assert np.allclose(bent[~upper], model.v_template[~upper])
    assert np.allclose(bent[upper], (model.v_template[upper] - spine) @ axis_angle_to_matrix(pose[9:12]).T + spine)
    assert np.allclose(bent_joints[3], spine)


def test_smpl_refuses_pickles_and_bad_files(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04 not really")
    with pytest.raises(InputError, match="pickle"):
        load_smpl(tmp_path / "model.pkl")
    np.savez(tmp_path / "partial.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(InputError, match="missing"):
        load_smpl(tmp_path / "partial.npz")


CAM_LOC = np.array([7.0, -1.0, 0.0])
ROOT = np.array([0.0, -1.0, 0.6])  # off the optical axis, where ray distance and planar depth differ


def official_extrinsic(cam_loc):
    """The official getExtrinsicBlender, written out as in SURREAL's smpl_relations.py."""
    r_world2bcam = np.array([[0, 0, 1], [0, -1, 0], [-1, 0, 0]]).T
    t_world2bcam = -1 * r_world2bcam @ cam_loc
    r_bcam2cv = np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]])
    return r_bcam2cv @ r_world2bcam, r_bcam2cv @ t_world2bcam


def surreal_body(model, betas, zrot, t):
    """The fixture's posed body in SURREAL's world (official rotateBody, root on joints3D[0])."""
    from mould.datasets.surreal import surreal_body_rotation

    pose = np.zeros(72)
    pose[:3] = [np.pi / 2, 0.0, 0.1 * t]  # MoCap pelvis: SMPL's +Y up to the MoCap's +Z up
    root = ROOT + [0.0, 0.0, 0.05 * t]
    translation = root - smpl_joints(model, betas)[0]
    vertices, joints = smpl_vertices(
        model, pose, betas, root_rotation=surreal_body_rotation(zrot, pose[:3]), translation=translation
    )
    return pose, vertices, joints


def write_surreal_clip(folder, model, frames: int = 3):
    """cmu/train/run0/01_01/01_01_c0001{.mp4,_info.mat,_depth.mat,_segm.mat}, rendered by ray casting."""
    import imageio.v3 as iio
    import open3d as o3d
    from scipy.io import savemat

    clip = folder / "cmu" / "train" / "run0" / "01_01"
    clip.mkdir(parents=True)
    betas = np.zeros(10)
    betas[0] = 0.5
    zrot = 0.7
    rotation, translation = official_extrinsic(CAM_LOC)
    rows, columns = np.mgrid[0:240, 0:320]
    directions_cv = np.stack([(columns + 0.5 - 160) / 600, (rows + 0.5 - 120) / 600, np.ones((240, 320))], -1)
    directions = directions_cv @ rotation  # R^T d, row vectors
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    origin = -rotation.T @ translation
    assert np.allclose(origin, CAM_LOC)
    info = {"pose": [], "joints3D": [], "shape": []}
    depth, segm, video = {}, {}, []
    for t in range(frames):
        pose, vertices, joints = surreal_body(model, betas, zrot, t)
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(model.faces.astype(np.uint32))
        )
        rays = np.concatenate([np.broadcast_to(origin, directions.shape), directions], -1).reshape(-1, 6)
        hit = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))["t_hit"].numpy().reshape(240, 320)
        person = np.isfinite(hit)
        depth[f"depth_{t + 1}"] = np.where(person, hit, 1e10).astype(np.float32)
        segm[f"segm_{t + 1}"] = person.astype(np.uint8) * 7
        image = np.zeros((240, 320, 3), np.uint8)
        image[..., 2] = 200
        image[person] = [220, 40 + 60 * t, 30]
        video.append(image)
        info["pose"].append(pose)
        info["joints3D"].append(joints.T)
        info["shape"].append(betas)
    savemat(
        clip / "01_01_c0001_info.mat",
        {
            "camLoc": CAM_LOC.reshape(3, 1).astype(np.float32),
            "camDist": np.float32(7.0),
            "pose": np.stack(info["pose"], 1).astype(np.float32),
            "shape": np.stack(info["shape"], 1).astype(np.float32),
            "joints3D": np.stack(info["joints3D"], 2).astype(np.float32),
            "zrot": np.full((frames, 1), zrot, np.float32),
            "gender": np.zeros((frames, 1), np.uint8),
            "sequence": "01_01_c0001",
            "source": "cmu",
        },
    )
    savemat(clip / "01_01_c0001_depth.mat", depth)
    savemat(clip / "01_01_c0001_segm.mat", segm)
    iio.imwrite(clip / "01_01_c0001.mp4", np.stack(video), plugin="pyav", codec="libx264", fps=25)
    return clip


@pytest.fixture
def surreal_root(tmp_path):
    pytest.importorskip("av")
    model_path = write_fake_smpl(tmp_path / "smpl.npz")
    write_surreal_clip(tmp_path / "SURREAL", load_smpl(model_path))
    return tmp_path / "SURREAL", model_path


def test_surreal_records_match_the_bodies_they_show(surreal_root):
    from mould.datasets.records import record_to_mould
    from mould.datasets.surreal import SurrealDataset

    root, model_path = surreal_root
    dataset = SurrealDataset(root, smpl=model_path, frame_step=1, resolution=96)
    assert len(dataset) == 3
    model = load_smpl(model_path)
    betas = np.zeros(10)
    betas[0] = 0.5
    for t in range(3):
        record = dataset[t]
        mould = record_to_mould(record)
        assert mould.resolution == 96 and mould.mask.sum() > 500
        # The loader's visible depth (SURREAL's ray distances, converted) must equal a planar-depth cast of
        # the same body with the crop camera, in the toolkit's world.
        from mould.encode import encode_mesh

        _, vertices, _ = surreal_body(model, betas, 0.7, t)
        truth = encode_mesh(vertices * [1, -1, -1], model.faces, mould.camera).mould
        iou = (mould.mask & truth.mask).sum() / (mould.mask | truth.mask).sum()
        assert iou > 0.9  # frame pixels are ~2 crop pixels: the nearest re-sampling blurs the edge by one
        both = mould.mask & truth.mask
        error = np.abs(mould.visible[both] - truth.visible[both])
        # Nearest re-sampling takes each crop pixel's depth from a ray up to half a frame pixel (6 mm at 7 m)
        # away, so errors of a few mm follow the surface's slope; skipping the ray-to-planar conversion would
        # add 2.6 cm (the body is 0.086 rad off the optical axis).
        assert np.median(error) < 0.005

        assert np.all(mould.hidden[mould.mask] >= mould.visible[mould.mask])
        assert np.median((mould.hidden - mould.visible)[both]) > 0.1  # the ellipsoid is 28 cm deep
        # The crop shows the person: red where the mask is (the video frame of time t).
        red = record["image"][0].numpy()
        assert red[mould.mask].mean() > 0.7 and red[~mould.mask].mean() < 0.3
        green = record["image"][1].numpy()[mould.mask].mean() * 255
        assert abs(green - (40 + 60 * t)) < 25  # frame t, not another one (h.264 is lossy)
        assert bool(record["has_normals"]) and bool(record["perspective"])
    # The camera looks along SURREAL's -X, which is -X in the toolkit's world too.
    forward = dataset.frame_mould(*dataset.items[0]).camera.cam_to_world[:3, 2]
    assert np.allclose(forward, [-1, 0, 0], atol=1e-9)


def test_surreal_frames_match_a_cast_on_the_same_rays(surreal_root):
    # At full frame size every pixel's ray is known exactly: the un-mirrored maps must equal a cast of the
    # body with the loader's camera (extrinsics, mirror, pixel centres and ray-to-planar all at once).
    from mould.datasets.surreal import SURREAL_INTRINSICS, SurrealDataset, surreal_cam_to_world

    from mould.camera import Camera
    from mould.encode import encode_mesh

    root, model_path = surreal_root
    dataset = SurrealDataset(root, smpl=model_path, frame_step=1)
    model = load_smpl(model_path)
    betas = np.zeros(10)
    betas[0] = 0.5
    for t in range(3):
        frame, planar, mask, info = dataset.frame_maps(*dataset.items[t])
        # A square 320 x 320 camera whose rows 40..279 are the frame's 240 rows.
        k = SURREAL_INTRINSICS
        camera = Camera("perspective", 320, k[0, 0], k[0, 2], k[1, 2] + 40, surreal_cam_to_world(info["camLoc"]))
        _, vertices, _ = surreal_body(model, betas, 0.7, t)
        truth = encode_mesh(vertices * [1, -1, -1], model.faces, camera).mould
        truth_mask, truth_depth = truth.mask[40:280], truth.visible[40:280]
        assert (mask != truth_mask).sum() <= 3  # rays grazing the silhouette may round either way
        both = mask & truth_mask
        assert np.abs(planar[both] - truth_depth[both]).max() < 1e-4  # float32 storage of ~7 m depths
        assert frame[mask][:, 0].mean() > 150 and frame[~mask][:, 2].mean() > 150  # red person, blue ground
        # The frame is un-mirrored too: the person's red pixels sit where the cast puts the body.
        columns = np.nonzero(frame[..., 0] > 128)[1]
        assert abs(columns.mean() - np.nonzero(truth_mask)[1].mean()) < 1.0


def test_surreal_planar_mode_and_bad_frames(surreal_root, caplog):
    from mould.datasets.surreal import SurrealDataset

    root, model_path = surreal_root
    ray = SurrealDataset(root, smpl=model_path, frame_step=2, resolution=64)
    planar = SurrealDataset(root, smpl=model_path, frame_step=2, resolution=64, depth_kind="planar")
    assert len(ray) == 2
    mask = ray[0]["mask"][0] > 0
    assert (planar[0]["visible"][0][mask] > ray[0]["visible"][0][mask]).all()  # distance > planar z
    clip = next(root.rglob("*_depth.mat"))
    clip.write_bytes(clip.read_bytes()[:100])  # truncated
    broken = SurrealDataset(root, smpl=model_path, frame_step=1, resolution=64)
    with caplog.at_level("WARNING"):
        with pytest.raises(InputError, match="no readable"):
            broken[0]
    assert "depth.mat" in caplog.text and len(broken.bad) == 3


def test_surreal_needs_the_users_smpl_model(tmp_path, surreal_root):
    from mould.datasets.mixing import open_dataset
    from mould.datasets.surreal import SurrealDataset

    root, model_path = surreal_root
    with pytest.raises(InputError, match="smpl_female.npz"):
        SurrealDataset(root)
    (root / "smpl.npz").write_bytes(model_path.read_bytes())  # the user's model, placed beside cmu/
    found = open_dataset(root, augment=None, seed=0)
    assert isinstance(found, SurrealDataset) and found[0]["image"].shape == (3, 256, 256)
    with pytest.raises(InputError, match="pickle"):
        SurrealDataset(tmp_path, smpl=tmp_path / "basicModel_f.pkl")
    with pytest.raises(InputError, match="no SURREAL clips"):
        SurrealDataset(tmp_path, smpl=write_fake_smpl(tmp_path / "smpl.npz"))


def test_a_video_of_another_size_is_refused_from_its_header(tmp_path):
    """Issue #15: a frame's size is checked from the stream's header, before anything is decoded."""
    import imageio.v3 as iio
    from mould.datasets.surreal import _read_frame

    iio.imwrite(tmp_path / "v.mp4", np.zeros((2, 480, 640, 3), np.uint8), plugin="pyav", codec="libx264", fps=25)
    with pytest.raises(InputError, match="a video of 640x480, expected 320x240"):
        _read_frame(tmp_path / "v.mp4", 0)

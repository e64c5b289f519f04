"""SampleFolder, augmentation and mixing: consistency of image, maps and camera; bad data never crashes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mould.datasets.augment import NO_AUGMENT, AugmentConfig, augment_record, flip_record, jitter_crop
from mould.datasets.folder import SampleFolder
from mould.datasets.mixing import MixedDataset, mix_datasets, parse_data_spec
from mould.datasets.records import mould_to_record
from mould.datasets.samples import write_sample

from mould.camera import Camera
from mould.encode import encode_mesh
from mould.errors import InputError
from mould.framing import frame_points

N = 48


def blob() -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric ellipsoid (so that a mirror image differs from the original), world frame."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=3)
    vertices = mesh.vertices * [0.3, 0.8, 0.2] + [0, 0.9, 0]
    vertices[:, 0] += 0.15 * (vertices[:, 1] - 0.9) ** 2  # bend it sideways
    return vertices, np.asarray(mesh.faces)


def encoded(camera: Camera, vertices=None, faces=None):
    if vertices is None:
        vertices, faces = blob()
    return encode_mesh(vertices, faces, camera, normals=True).mould


def base_camera(yaw: float = 20.0) -> Camera:
    vertices, _ = blob()
    return frame_points(vertices, N, yaw_deg=yaw, elevation_deg=10.0)


def textured(mould) -> np.ndarray:
    """A deterministic image with structure (so that flips and crops are visible)."""
    v, u = np.mgrid[0:N, 0:N]
    image = np.stack([u * 5 % 256, v * 5 % 256, np.where(mould.mask, 200, 30)], axis=-1)
    return image.astype(np.uint8)


def make_folder(tmp_path, count: int = 4):
    for i in range(count):
        mould = encoded(base_camera(yaw=15.0 * i))
        write_sample(tmp_path, f"s{i:03d}", mould, textured(mould), {"source": "test", "index": i})
    return tmp_path


def test_folder_yields_records(tmp_path):
    folder = SampleFolder(make_folder(tmp_path, 3))
    assert len(folder) == 3
    record = folder[1]
    assert record["image"].shape == (3, N, N) and record["image"].dtype == torch.float32
    assert record["visible"].shape == record["hidden"].shape == record["mask"].shape == (1, N, N)
    assert bool(record["has_normals"]) and int(record["skipped"]) == 0
    mould = encoded(base_camera(yaw=15.0))
    assert torch.equal(record["visible"][0], torch.from_numpy(np.where(mould.mask, mould.visible, 0)))
    pixels = torch.from_numpy(textured(mould)).permute(2, 0, 1).float() / 255.0  # the PNG is lossless
    assert torch.equal(record["image"], pixels)


def test_empty_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no samples found"):
        SampleFolder(tmp_path)


@pytest.mark.parametrize("damage", ["truncate_png", "bad_npz", "missing_npz", "bad_json"])
def test_bad_sample_is_skipped_logged_and_counted(tmp_path, caplog, damage):
    root = make_folder(tmp_path, 3)
    if damage == "truncate_png":
        data = (root / "s001.png").read_bytes()
        (root / "s001.png").write_bytes(data[: len(data) // 2])
    elif damage == "bad_npz":
        (root / "s001.npz").write_bytes(b"PK\x03\x04 this is not a zip file")
    elif damage == "missing_npz":
        (root / "s001.npz").unlink()
    else:
        (root / "s001.json").write_text("{ not json")
    folder = SampleFolder(root)
    with caplog.at_level("WARNING"):
        records = [folder[i] for i in range(len(folder))]
    assert "s001" in caplog.text
    assert set(folder.bad) == {"s001"}
    # s001 is replaced by the next valid sample, s002, and the step over it is counted in the record.
    assert torch.equal(records[1]["visible"], records[2]["visible"])
    assert [int(r["skipped"]) for r in records] == [0, 1, 0]
    assert folder.skipped == 1 and "1 bad" in folder.summary()


def test_all_bad_raises_an_input_error(tmp_path):
    root = make_folder(tmp_path, 2)
    for path in root.glob("*.npz"):
        path.write_bytes(b"garbage")
    with pytest.raises(InputError, match="no readable"):
        SampleFolder(root)[0]


def test_augmentation_is_deterministic_and_changes_with_epoch(tmp_path):
    root = make_folder(tmp_path, 2)
    config = AugmentConfig(flip=0.5, occluder=1.0)
    a, b = SampleFolder(root, config, seed=3), SampleFolder(root, config, seed=3)
    for key in ("image", "visible", "intrinsics"):
        assert torch.equal(a[0][key], b[0][key])
    b.set_epoch(1)
    assert not torch.equal(a[0]["image"], b[0]["image"])


def test_no_augment_leaves_the_record_unchanged():
    mould = encoded(base_camera())
    record = mould_to_record(mould, textured(mould))
    out = augment_record(record, NO_AUGMENT, np.random.default_rng(0))
    for key in record:
        assert torch.equal(out[key], record[key]), key


def mirrored(camera: Camera) -> tuple[np.ndarray, np.ndarray, Camera]:
    """The blob mirrored across the camera's x = 0 plane, and the camera with cx -> N - 1 - cx."""
    vertices, faces = blob()
    cam = camera.to_camera(vertices) * [-1, 1, 1]
    flipped_camera = Camera(camera.kind, N, camera.focal, N - 1 - camera.cx, camera.cy, camera.cam_to_world)
    return camera.to_world(cam), faces[:, ::-1], flipped_camera


def test_flip_matches_encoding_the_mirrored_body():
    camera = base_camera()
    mould = encoded(camera)
    record = mould_to_record(mould, textured(mould))
    flipped = flip_record(record)
    vertices, faces, flipped_camera = mirrored(camera)
    expected = mould_to_record(encoded(flipped_camera, vertices, faces), textured(mould)[:, ::-1].copy())
    assert torch.equal(flipped["mask"], expected["mask"])
    inside = expected["mask"][0] > 0
    for key in ("visible", "hidden"):
        assert torch.allclose(flipped[key][0][inside], expected[key][0][inside], atol=1e-5), key
    for key in ("visible_normals", "hidden_normals"):
        assert torch.allclose(flipped[key][:, inside], expected[key][:, inside], atol=1e-4), key
    assert torch.allclose(flipped["intrinsics"], expected["intrinsics"])
    assert torch.equal(flipped["image"], expected["image"])
    twice = flip_record(flipped)
    for key in record:
        assert torch.equal(twice[key], record[key]), key


@pytest.mark.parametrize(("scale", "shift_px"), [(1.0, (3.0, -5.0)), (2.0, (0.5, 0.5)), (3.0, (1.0, -2.0))])
def test_crop_jitter_matches_encoding_with_the_new_intrinsics(scale, shift_px):
    # Shifts chosen so that every new pixel centre lands exactly on an old one: the nearest-neighbour
    # re-sampling is then exact and must equal a fresh encoding with the adjusted camera.
    camera = base_camera()
    mould = encoded(camera)
    record = mould_to_record(mould, textured(mould))
    out = jitter_crop(record, scale, (shift_px[0] / N, shift_px[1] / N))
    focal, cx, cy = (float(x) for x in out["intrinsics"])
    expected = encoded(Camera("perspective", N, focal, cx, cy, camera.cam_to_world))
    assert np.array_equal(out["mask"][0].numpy() > 0, expected.mask)
    inside = expected.mask
    assert np.allclose(out["visible"][0].numpy()[inside], expected.visible[inside], atol=1e-5)
    assert np.allclose(out["hidden"][0].numpy()[inside], expected.hidden[inside], atol=1e-5)


def test_zooming_in_approximates_the_new_crop():
    # Zooming in puts new pixel centres between old ones: nearest re-sampling takes the neighbouring ray,
    # so the silhouette may move by half an old pixel and depths differ by the surface's slope over it.
    camera = base_camera()
    record = mould_to_record(encoded(camera), np.zeros((N, N, 3), np.uint8))
    out = jitter_crop(record, 0.8, (0.05, -0.03))
    focal, cx, cy = (float(x) for x in out["intrinsics"])
    expected = encoded(Camera("perspective", N, focal, cx, cy, camera.cam_to_world))
    mask = out["mask"][0].numpy() > 0
    iou = (mask & expected.mask).sum() / (mask | expected.mask).sum()
    assert iou > 0.93  # a half-pixel band around a ~30-pixel-wide figure is ~6 % of its area
    both = mask & expected.mask
    error = np.abs(out["visible"][0].numpy()[both] - expected.visible[both])
    assert np.median(error) < 0.01  # an old pixel spans ~2 cm at this framing; slopes are mostly gentle


def test_crop_jitter_fills_beyond_the_old_crop():
    mould = encoded(base_camera())
    record = mould_to_record(mould, textured(mould))
    out = jitter_crop(record, 2.0, (0.0, 0.0), fill=np.array([1.0, 0.0, 0.0]))
    assert torch.allclose(out["image"][:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert out["mask"][0, 0, 0] == 0


def test_the_back_colour_follows_the_image_through_every_augmentation():
    # A back colour equal to the image must stay equal to it through crops, flips and colour jitter (the
    # contrast of both pivots on the image's mean), while occluders, which hide the front, never reach it.
    mould = encoded(base_camera())
    image = textured(mould)
    record = mould_to_record(mould.replace(back_image=image), image)
    assert record["has_back"] and torch.equal(record["back"], record["image"])
    config = AugmentConfig(flip=1.0, crop_scale=0.0, crop_shift=0.0, occluder=0.0)
    out = augment_record(record, config, np.random.default_rng(3))
    assert not torch.equal(out["back"], record["back"])
    torch.testing.assert_close(out["back"], out["image"], rtol=0, atol=1e-6)
    shifted = jitter_crop(record, 1.0, (6 / N, 0.0))  # a whole number of pixels: nearest = bilinear
    torch.testing.assert_close(shifted["back"][:, :, :-6], shifted["image"][:, :, :-6], rtol=0, atol=1e-5)
    hidden = augment_record(record, AugmentConfig(occluder=1.0, flip=0.0, brightness=0.0, contrast=0.0,
                                                  saturation=0.0, channel_gain=0.0, crop_scale=0, crop_shift=0),
                            np.random.default_rng(5))  # fmt: skip
    assert torch.equal(hidden["back"], record["back"]) and not torch.equal(hidden["image"], record["image"])
    # And a record without back colours says so.
    assert not mould_to_record(mould, image)["has_back"]


def test_colour_jitter_and_occluders_leave_maps_alone():
    mould = encoded(base_camera())
    record = mould_to_record(mould, textured(mould))
    config = AugmentConfig(flip=0, crop_scale=0, crop_shift=0, occluder=1.0)
    out = augment_record(record, config, np.random.default_rng(5))
    assert not torch.equal(out["image"], record["image"])
    assert out["image"].min() >= 0 and out["image"].max() <= 1
    for key in ("visible", "hidden", "mask", "visible_normals", "intrinsics"):
        assert torch.equal(out[key], record[key]), key


def test_augment_config_validates():
    with pytest.raises(ValueError, match="flip"):
        AugmentConfig(flip=1.5)
    with pytest.raises(ValueError, match="occluder_size"):
        AugmentConfig(occluder_size=(0.5, 0.1))


class Constant(torch.utils.data.Dataset):
    def __init__(self, value: int, length: int) -> None:
        self.value, self.length = value, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> int:
        return self.value


def test_mixing_follows_the_weights_and_the_seed():
    mixed = MixedDataset([(Constant(0, 10), 1.0), (Constant(1, 1000), 3.0)], length=4000, seed=1)
    draws = np.array([mixed[i] for i in range(len(mixed))])
    # Binomial(4000, 0.75): standard deviation 27 draws; 5 sigma is 0.034 of the share.
    assert abs(draws.mean() - 0.75) < 0.034
    again = MixedDataset([(Constant(0, 10), 1.0), (Constant(1, 1000), 3.0)], length=4000, seed=1)
    assert [again.source_of(i) for i in range(50)] == [mixed.source_of(i) for i in range(50)]
    mixed.set_epoch(1)
    assert [again.source_of(i) for i in range(50)] != [mixed.source_of(i) for i in range(50)]
    single = Constant(2, 5)
    assert mix_datasets([(single, 1.0)]) is single
    with pytest.raises(ValueError, match="weights"):
        MixedDataset([(single, 0.0)])


def test_parse_data_spec():
    assert parse_data_spec("a/b") == [(__import__("pathlib").Path("a/b"), 1.0)]
    specs = parse_data_spec("synth:3, real:0.5,C:odd")
    assert [(str(p), w) for p, w in specs] == [("synth", 3.0), ("real", 0.5), ("C:odd", 1.0)]
    with pytest.raises(InputError, match="weight"):
        parse_data_spec("synth:-1")
    with pytest.raises(InputError, match="empty"):
        parse_data_spec("a,,b")

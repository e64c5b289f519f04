"""The synthetic generator: reproducible, clothing and hair as geometry, resumable runs, contact sheets."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
import trimesh
from mould.datasets.appearance import Material
from mould.datasets.synth_folder import synthesize
from mould.datasets.synthetic import SynthConfig, generate_batch, generate_sample

from mould.encode import encode_mesh
from mould.errors import InputError
from mould.framing import frame_points

SMALL = SynthConfig(resolution=48, zoom_out=0.0)  # whole crops: a zoomed-out person is a few pixels at 48²


def test_generate_sample_is_deterministic(anny_body):
    a_mould, a_image, a_params = generate_sample(3, 11, SMALL)
    b_mould, b_image, b_params = generate_sample(3, 11, SMALL)
    assert np.array_equal(a_image, b_image)
    assert np.array_equal(a_mould.visible, b_mould.visible) and np.array_equal(a_mould.hidden, b_mould.hidden)
    assert np.array_equal(a_mould.back_image, b_mould.back_image)
    assert json.dumps(a_params, sort_keys=True) == json.dumps(b_params, sort_keys=True)
    c_mould, _, c_params = generate_sample(4, 11, SMALL)
    assert c_params["phenotype"] != a_params["phenotype"]
    assert a_mould.has_normals and a_mould.mask.sum() > 100
    assert a_params["seed"] == 11 and a_params["index"] == 3 and a_params["source"] == "synthetic"


def _scene(outfit=(), hairstyle=None, **changes):
    """A draw of a body in a neutral stance wearing ``outfit`` and ``hairstyle`` (bald by default)."""
    from mould.datasets.bodies import body_bank
    from mould.datasets.hair import Hairstyle
    from mould.datasets.poses import neutral_pose, pose_deltas
    from mould.datasets.scenes import draw_scene

    pose = neutral_pose()
    for side in "LR":  # arms a little away from the body and legs apart, so that the regions are clear
        pose[f"shoulder.{side}"] = [0.0, 25.0, 0.0]
        pose[f"hip.{side}"] = [0.0, 8.0, 0.0]
    draw = draw_scene(0, 0, SynthConfig(resolution=128))
    rotations = list(pose_deltas([pose], body_bank().bone_labels).astype(np.float32))
    return dataclasses.replace(
        draw, tries=1, poses=[("standing", pose)], rotations=rotations, outfits=(tuple(outfit), tuple(outfit)),
        hairstyle=hairstyle or Hairstyle("bald", thickness=0.0, material=draw.hairstyle.material), **changes,
    )  # fmt: skip


def _mould(draw, camera):
    from mould.datasets.dressing import dress

    dressed = dress([draw])
    vertices, faces = dressed.vertices.double().numpy(), dressed.faces.numpy()
    return encode_mesh(vertices, faces, camera).mould, vertices[dressed.used.numpy()]


def test_clothing_and_hair_change_the_silhouette_and_the_back(anny_body):
    from mould.datasets.appearance import garment_material
    from mould.datasets.clothing import Garment
    from mould.datasets.hair import Hairstyle

    material = garment_material(np.random.default_rng(0))
    naked_draw = _scene()
    _, body = _mould(naked_draw, frame_points(anny_body[0], 8))
    camera = frame_points(body, 128, yaw_deg=90.0, box_scale=1.3)  # side view, room for the clothes
    naked, _ = _mould(naked_draw, camera)
    top = Garment("top", sleeve=2.0, hem=-0.1, collar=0.95, ease=0.04, folds=0.0, material=material)
    dressed, _ = _mould(_scene([top]), camera)
    assert dressed.mask.sum() > naked.mask.sum() * 1.05  # a 4 cm ease widens a side view visibly
    both = naked.mask & dressed.mask
    thicker = (dressed.hidden - dressed.visible)[both] - (naked.hidden - naked.visible)[both]
    changed = thicker[thicker > 0.01]
    assert changed.size > 0.3 * both.sum()
    assert np.percentile(changed, 10) > 0.07  # front and back each move out by the 4 cm ease

    front = frame_points(body, 128, box_scale=1.3)
    skirt = Garment("skirt", waist=0.3, ease=0.005, flare=0.2, length=0.6, material=material)
    with_skirt, _ = _mould(_scene([skirt]), front)
    without, _ = _mould(naked_draw, front)
    # Between the legs, above the knees: background without the skirt, fabric with it.
    gap = without.mask == 0
    rows = slice(int(128 * 0.45), int(128 * 0.6))
    assert (with_skirt.mask[rows] & gap[rows]).sum() > 20

    hair = Hairstyle("long", thickness=0.02, hairline=0.4, nape=-0.6, length=0.35, material=material)
    long_hair, _ = _mould(_scene(hairstyle=hair), front)
    neck_and_back = without.mask & long_hair.mask
    deeper = long_hair.hidden[neck_and_back] - without.hidden[neck_and_back]
    assert (deeper > 0.01).sum() > 50  # the back surface moved out behind the hair


def test_under_ambient_light_the_image_and_the_back_are_the_albedo():
    """One grey sphere, no directional light: every pixel of the person is 0.8 x its albedo, and so is the
    back colour (the back's albedo times the mean light the front received, here 0.8)."""
    import torch
    from mould.datasets.appearance import NOISE_OCTAVES, material_table
    from mould.datasets.backdrops import BackdropDraw
    from mould.datasets.dressing import Dressed
    from mould.datasets.noise import noise_offsets
    from mould.datasets.render import Lighting
    from mould.datasets.shading import render_batch

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    vertices = torch.as_tensor(np.asarray(sphere.vertices), dtype=torch.float32)
    faces = torch.as_tensor(np.asarray(sphere.faces))
    grey = Material("solid", (0.5, 0.25, 1.0), (0.0, 0.0, 0.0), 0.1, (0.0, 1.0, 0.0), 0.0, 1)
    table, seeds = material_table([grey])
    dressed = Dressed(
        vertices=vertices, faces=faces, face_scene=torch.zeros(len(faces), dtype=torch.int64),
        face_material=torch.zeros(len(faces), dtype=torch.int64), texcoords=vertices,
        normals=vertices / vertices.norm(dim=1, keepdim=True), used=torch.ones(len(vertices), dtype=torch.bool),
        materials=torch.as_tensor(table, dtype=torch.float32),
        material_offsets=noise_offsets(torch.as_tensor(seeds), NOISE_OCTAVES),
        families=["standing"], poses=[{}], tries=[1], collisions=[[]], outfits=[()],
    )  # fmt: skip
    black = BackdropDraw(info={"kind": "procedural"}, wall=(0.0, 0.0, 0.0), floor=(0.0, 0.0, 0.0))
    draw = _scene(
        lighting=Lighting((0.8, 0.8, 0.8), ()), noise=0.0, box_scale=1.0, box_shift=(0.0, 0.0), backdrop=black
    )
    rendered = render_batch(dressed, [draw], 32, shadow_size=32, generators=[torch.Generator().manual_seed(0)])
    mask = rendered.hits.mask[0].numpy()
    image, back = rendered.image[0].numpy().astype(int), rendered.back_image[0].numpy().astype(int)
    interior = mask.copy()
    interior[1:-1, 1:-1] &= mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    assert np.all(np.abs(image[interior] - [102, 51, 204]) <= 1)  # 0.8 x albedo x 255
    assert np.all(np.abs(back[mask] - [102, 51, 204]) <= 1)
    assert np.all(back[~mask] == 0) and np.all(image[~mask] <= 60)  # background, softened at the silhouette
    assert torch.allclose(rendered.light[0], torch.full((3,), 0.8))


def _zip_members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_synthesize_is_reproducible_resumable_and_guards_its_folder(tmp_path, anny_body):
    first, second = tmp_path / "a", tmp_path / "b"
    summary = synthesize(first, 3, seed=5, config=SMALL, progress=False)
    assert (summary.written, summary.skipped, summary.failed) == (3, 0, [])
    synthesize(second, 3, seed=5, config=SMALL, progress=False)
    for name in ("0000000", "0000001", "0000002"):
        assert (first / f"{name}.png").read_bytes() == (second / f"{name}.png").read_bytes()
        assert (first / f"{name}.json").read_bytes() == (second / f"{name}.json").read_bytes()
        # .npz zip entries carry a write time; the arrays inside must be byte-identical.
        assert _zip_members(first / f"{name}.npz") == _zip_members(second / f"{name}.npz")

    (first / "0000001.json").unlink()  # as if the run had been interrupted while writing sample 1
    again = synthesize(first, 4, seed=5, config=SMALL, progress=False)
    assert (again.written, again.skipped) == (2, 2)
    assert (first / "0000001.png").read_bytes() == (second / "0000001.png").read_bytes()

    with pytest.raises(InputError, match="seed"):
        synthesize(first, 4, seed=6, config=SMALL, progress=False)
    (first / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        synthesize(first, 4, seed=5, config=SMALL, progress=False)
    forced = synthesize(first, 2, seed=5, config=SMALL, force=True, progress=False)
    assert (forced.written, forced.skipped) == (0, 2) and (first / "notes.txt").exists()
    reseeded = synthesize(first, 1, seed=6, config=SMALL, force=True, progress=False)
    assert reseeded.written == 1 and json.loads((first / "0000000.json").read_text())["seed"] == 6


@pytest.mark.slow
def test_workers_write_the_same_samples_as_one_process(tmp_path):
    synthesize(tmp_path / "one", 4, seed=2, config=SMALL, progress=False)
    synthesize(tmp_path / "two", 4, seed=2, config=SMALL, workers=2, progress=False)
    for i in range(4):
        name = f"{i:07d}"
        assert (tmp_path / "one" / f"{name}.png").read_bytes() == (tmp_path / "two" / f"{name}.png").read_bytes()
        assert _zip_members(tmp_path / "one" / f"{name}.npz") == _zip_members(tmp_path / "two" / f"{name}.npz")


def test_synth_and_data_show_commands(tmp_path, capsys, anny_body):
    from mould.cli import main

    out = tmp_path / "data"
    assert main(["-q", "synth", str(out), "--count", "2", "--resolution", "32"]) == 0
    assert "2 written" in capsys.readouterr().out
    (out / "0000001.npz").write_bytes(b"corrupt")
    sheet = tmp_path / "sheet.png"
    assert main(["data", "show", str(out), "-o", str(sheet), "--count", "2", "--panel", "32"]) == 0
    import imageio.v3 as iio

    picture = iio.imread(sheet)
    assert picture.shape == (32, 4 * 32, 3)  # only the readable sample is shown
    assert main(["data", "show", str(tmp_path / "missing"), "-o", str(sheet)]) == 2
    assert main(["synth", str(out), "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err


def test_contact_sheet_layout(tmp_path, anny_body):
    from mould.datasets.samples import write_sample
    from mould.datasets.sheet import contact_sheet

    for i in range(3):
        mould, image, params = generate_sample(i, 0, SynthConfig(resolution=32))
        write_sample(tmp_path, f"s{i}", mould, image, params)
    sheet, shown = contact_sheet(tmp_path, 3, columns=2, panel=20)
    assert shown == ["s0", "s1", "s2"]
    assert sheet.shape == (2 * 20 + 4, 2 * 4 * 20 + 4, 3)
    with pytest.raises(InputError, match="no samples"):
        contact_sheet(tmp_path / "nothing" if (tmp_path / "nothing").mkdir() is None else tmp_path)


def test_manifest_is_not_a_sample(tmp_path, anny_body):
    from mould.datasets.samples import sample_names

    synthesize(tmp_path, 1, seed=0, config=SynthConfig(resolution=32), progress=False)
    assert sample_names(tmp_path) == ["0000000"]
    assert json.loads(io.StringIO((tmp_path / ".synth.json").read_text()).read())["seed"] == 0


def _paint(draws, size, seeds=None):
    import torch
    from mould.datasets.backdrops import paint_backdrops

    generators = [torch.Generator().manual_seed(i) for i in (seeds or range(len(draws)))]
    return paint_backdrops(draws, size, generators, torch.device("cpu")).numpy()


def test_backgrounds_from_images(tmp_path):
    import imageio.v3 as iio
    from mould.datasets.backdrops import background_images, draw_backdrop

    (tmp_path / "sub").mkdir()
    iio.imwrite(tmp_path / "sub" / "room.png", np.full((50, 80, 3), [10, 200, 30], np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    images = background_images(tmp_path)
    assert [p.name for p in images] == ["broken.jpg", "room.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty holds no PNG or JPEG image"):
        background_images(tmp_path / "empty")
    draws = [draw_backdrop(24, np.random.default_rng(seed), images) for seed in range(12)]
    pictures = _paint(draws, 24)
    assert pictures.shape == (12, 24, 24, 3) and 0 <= pictures.min() and pictures.max() <= 1
    for draw, picture in zip(draws, pictures):
        if draw.info["kind"] == "image":
            assert draw.info["path"] == "room.png"
            assert np.allclose(picture[0, 0], [10 / 255, 200 / 255, 30 / 255], atol=1e-6)
    # The broken file (and 10 % of draws) fall back to procedural backgrounds.
    assert {draw.info["kind"] for draw in draws} == {"image", "procedural"}


def test_background_photos_are_decoded_once_while_the_budget_lasts(tmp_path, monkeypatch):
    """A decoded photo is kept per process (a GPU run's workers crop ~600 a second): the same draws give
    the same crops from the kept copy, and past the byte budget a photo is decoded again each time."""
    from mould.datasets import backdrops
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    images = list(backdrops.background_images(tmp_path))
    monkeypatch.setattr(backdrops, "_DECODED", {})

    def crops() -> list:
        draws = [backdrops.draw_backdrop(32, np.random.default_rng(seed), images) for seed in range(8)]
        return [draw.photo for draw in draws if draw.photo is not None]

    monkeypatch.setattr(backdrops, "DECODED_BUDGET", 0)
    uncached = crops()
    assert backdrops._DECODED == {} and len(uncached) >= 5
    monkeypatch.setattr(backdrops, "DECODED_BUDGET", 60 * 90 * 3)  # room for one of the two, not both
    assert all(np.array_equal(a, b) for a, b in zip(crops(), uncached, strict=True))
    assert len(backdrops._DECODED) == 1


def test_clutter_puts_fine_detail_into_procedural_backgrounds():
    # The point of clutter: the background is no longer smooth where the person is detailed.
    from mould.datasets.backdrops import draw_backdrop

    def detail(picture: np.ndarray) -> float:
        return float(np.abs(np.diff(picture, axis=1)).mean())

    plain = [draw_backdrop(96, np.random.default_rng(seed)) for seed in range(5)]
    cluttered = [draw_backdrop(96, np.random.default_rng(seed), clutter=1.0) for seed in range(5)]
    assert all(draw.info == {"kind": "procedural", "clutter": True} for draw in cluttered)
    # Painted together: each background is painted the same in any batch.
    mixed = _paint(plain + cluttered, 96)
    assert min(detail(p) for p in mixed[5:]) > 2 * max(detail(p) for p in mixed[:5])
    assert np.allclose(_paint(cluttered[:1], 96, seeds=[5])[0], mixed[5], atol=1e-6)


def test_zoomed_out_crops_show_a_smaller_person(anny_body):
    from mould.datasets.synthetic import SynthConfig, generate_sample

    near = SynthConfig(resolution=64, zoom_out=0.0, clutter=0.0)
    far = SynthConfig(resolution=64, zoom_out=1.0, clutter=0.0)
    sizes = {}
    for name, config in (("near", near), ("far", far)):
        mould, _, params = generate_sample(11, 0, config)
        sizes[name] = (mould.mask.sum(), params["camera"]["box_scale"])
    assert sizes["near"][1] <= 1.12 and sizes["far"][1] >= 1.3
    assert sizes["far"][0] < sizes["near"][0]


def test_the_photo_view_mix_and_the_bands():
    from mould.datasets.views import PHOTO_MIX, sample_yaw, view_band

    rng = np.random.default_rng(0)
    yaws = np.array([sample_yaw(rng) for _ in range(20_000)])
    bands = [view_band(yaw) for yaw in yaws]
    for band, share in PHOTO_MIX.items():
        # 20,000 draws: the binomial standard deviation of a share is under 0.0033.
        assert abs(bands.count(band) / len(bands) - share) < 0.015, band
    assert np.mean(np.abs(yaws) > 45) >= 0.2 and np.mean(np.abs(yaws) > 135) >= 0.05  # what #11 asks
    assert abs(np.mean(yaws > 0) - 0.5) < 0.015  # both sides alike
    uniform = np.array([sample_yaw(rng, "uniform") for _ in range(20_000)])
    assert abs(np.mean(np.abs(uniform) <= 45) - 0.25) < 0.015
    assert [view_band(a) for a in (0, 45, 45.1, -90, 135, 135.1, 180, -179, 315, 400)] == [
        "front", "front", "side", "side", "side", "back", "back", "back", "front", "front"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="mix"):
        sample_yaw(rng, "behind")


def test_samples_record_their_yaw_from_the_view_mix(anny_body):
    from mould.datasets.views import VIEW_BANDS

    _, _, params = generate_sample(3, seed=11, config=SynthConfig(resolution=32))
    yaw = params["camera"]["yaw_deg"]
    assert -180 <= yaw <= 180 and any(low <= abs(yaw) <= high for low, high in VIEW_BANDS.values())


def test_a_batch_gives_each_sample_as_alone(anny_body):
    together = generate_batch([0, 1], 5, SMALL)
    for index, (mould, image, params) in enumerate(together):
        alone, alone_image, alone_params = generate_sample(index, 5, SMALL)
        assert params["pose"] == alone_params["pose"] and params["outfit"] == alone_params["outfit"]
        assert np.allclose(mould.camera.cam_to_world, alone.camera.cam_to_world, atol=1e-9)
        assert (mould.mask != alone.mask).mean() < 1e-3
        both = mould.mask & alone.mask
        assert np.abs(mould.visible[both] - alone.visible[both]).max() < 1e-5  # float32 round-off
        assert np.abs(image.astype(int) - alone_image.astype(int)).mean() < 0.5


def test_frame_cameras_is_frame_points_for_a_batch(anny_body):
    import torch
    from mould.datasets.render import Framing, frame_cameras

    vertices = anny_body[0]
    views = [(30.0, 5.0, 2.5, 1.0, (0.0, 0.0)), (200.0, -12.0, 4.0, 2.1, (0.03, -0.02))]
    points = torch.as_tensor(np.concatenate([vertices, vertices * 0.6]))
    scene = torch.cat(
        [torch.zeros(len(vertices), dtype=torch.int64), torch.ones(len(vertices), dtype=torch.int64)]
    )
    framing = Framing(*(torch.tensor([view[i] for view in views], dtype=torch.float64) for i in range(5)))
    cam_to_world, intrinsics, distance = frame_cameras(points, scene, framing, 96)
    for b, (yaw, elevation, factor, scale, shift) in enumerate(views):
        part = points[scene == b].numpy()
        extent = float((part.max(0) - part.min(0)).max())
        camera = frame_points(part, 96, yaw_deg=yaw, elevation_deg=elevation, distance=factor * extent,
                              box_scale=scale, box_shift=shift)  # fmt: skip
        assert np.allclose(cam_to_world[b].numpy(), camera.cam_to_world, atol=1e-12)
        assert np.allclose(intrinsics[b].numpy(), [camera.focal, camera.cx, camera.cy], rtol=1e-12, atol=1e-9)
        assert abs(float(distance[b]) - factor * extent) < 1e-12


@pytest.mark.slow  # ~40 s: draw workers start twice
def test_the_device_path_writes_the_samples_in_batches(tmp_path, anny_body, monkeypatch):
    """``synthesize(batch > 1)``: workers draw, this process renders batches (the GPU path, on the CPU); a
    sample that fails fails alone."""
    import mould.datasets.synth_folder as runs
    from mould.datasets.samples import read_sample

    config = SynthConfig(resolution=32, zoom_out=0.0)
    render = runs.render_draws

    def fragile(draws, config, device):  # sample 4 cannot be rendered
        if any(d.index == 4 for d in draws):
            raise RuntimeError("bad sample")
        return render(draws, config, device=device)

    monkeypatch.setattr(runs, "render_draws", lambda draws, config, device: fragile(draws, config, device))
    broken = synthesize(tmp_path / "broken", 6, seed=4, config=config, batch=2, progress=False)
    assert broken.written == 5 and len(broken.failed) == 1 and broken.failed[0].startswith("0000004")
    monkeypatch.setattr(runs, "render_draws", render)
    summary = synthesize(tmp_path / "good", 3, seed=4, config=config, batch=2, progress=False)
    assert (summary.written, summary.failed) == (3, [])
    for index in range(3):
        mould, params = read_sample(tmp_path / "good", f"{index:07d}")
        expected, _, expected_params = generate_sample(index, 4, config)
        expected_params = json.loads(json.dumps(expected_params))  # as written: tuples become lists
        assert params["pose"] == expected_params["pose"] and params["hair"] == expected_params["hair"]
        assert (mould.mask != expected.mask).mean() < 5e-3  # batches differ from single samples by round-off


def test_bench_synth_says_which_z_buffer_rendered(anny_body):
    """The speed depends on the z-buffer (compiled on a CPU with numba, else torch): the figures name it."""
    from mould.datasets import raster_kernel

    from mould.benchmarks.synth import BenchSynthConfig, bench_synth

    lines: list[str] = []
    figures = bench_synth(BenchSynthConfig(seconds=0.5, resolution=32), lines.append)
    expected = "compiled" if raster_kernel.available() else "torch"
    assert figures["samples"] > 0 and figures["zbuffer"] == expected
    assert f"{expected} z-buffer" in lines[0]

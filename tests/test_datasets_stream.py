"""``--data synth``: a stream of fresh samples, unique per position, the same in data workers or on a device."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_samples
from mould.datasets.mixing import MixedDataset
from mould.datasets.stream import (
    STREAM_LENGTH,
    DeviceBatches,
    SynthStream,
    collate,
    open_stream,
    parse_stream_spec,
)
from mould.datasets.synthetic import SynthConfig

from mould.errors import InputError

TINY = SynthConfig(resolution=32, zoom_out=0.0)


class Keys(SynthStream):
    """A stream that returns the key of each draw instead of rendering it."""

    def draw(self, key: int) -> dict:
        return {"key": key}


def test_every_position_is_its_own_sample():
    stream = Keys(0, TINY)
    stream.set_epoch(3)
    assert stream[5]["key"] == 3 * STREAM_LENGTH + 5
    folder = [{"key": -1}] * 4
    mix = MixedDataset([(folder, 1.0), (stream, 3.0)], length=200, seed=1)
    keys = []
    for epoch in range(3):
        mix.set_epoch(epoch)
        keys += [mix[i]["key"] for i in range(200)]
    drawn = [k for k in keys if k >= 0]
    assert len(drawn) == len(set(drawn)) > 400  # ~3/4 of the 600 positions, none twice
    assert parse_stream_spec("synth") == 0 and parse_stream_spec("synth@128") == 128
    assert parse_stream_spec("synthetic") is None and parse_stream_spec("data/synth") is None


def test_stream_records_are_deterministic_and_differ_between_positions():
    stream = SynthStream(7, TINY)
    first, again, other = stream.draw(11), stream.draw(11), stream.draw(12)
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["image"], other["image"])
    assert bool(first["has_back"]) and first["mask"].sum() > 20


def test_draws_rendered_on_a_device_match_the_records_workers_make(tmp_path):
    folder = make_samples(tmp_path / "folder", 3, resolution=32)
    from mould.datasets.folder import SampleFolder

    records = SampleFolder(folder)
    cpu, device = SynthStream(7, TINY), SynthStream(7, TINY, mode="draws")
    items = [records[0], device.draw(11), records[1], device.draw(12)]
    loader = [collate(items)]  # what a DataLoader yields, one batch
    batch = next(iter(DeviceBatches(loader, TINY, torch.device("cpu"))))
    expected = torch.utils.data.default_collate([records[0], cpu.draw(11), records[1], cpu.draw(12)])
    assert batch.keys() == expected.keys()
    for key in expected:
        assert batch[key].shape == expected[key].shape, key
    for slot in (0, 2):  # folder records pass through untouched
        assert torch.equal(batch["image"][slot], expected["image"][slot])
    for slot in (1, 3):  # rendered in the batch of two draws, against one at a time: float round-off only
        mask = expected["mask"][slot] > 0
        assert (batch["mask"][slot] != expected["mask"][slot]).float().mean() < 2e-3
        both = mask & (batch["mask"][slot] > 0)
        assert (batch["visible"][slot][both] - expected["visible"][slot][both]).abs().max() < 1e-5
        assert (batch["image"][slot] - expected["image"][slot]).abs().mean() < 2 / 255


def test_a_failing_loader_raises_in_the_consumer():
    def broken():
        yield from ()
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        next(iter(DeviceBatches(broken(), TINY, torch.device("cpu"))))


def test_synth_and_streaming_training_without_anny_and_open3d(tmp_path):
    """The GPU machine's situation on the CPU: no anny, no open3d, only the body bank; ``mould synth`` writes
    samples and ``mould train --data synth`` trains with nothing on disk but the validation set."""
    from mould.datasets.bank import bank_path

    samples, run = tmp_path / "samples", tmp_path / "run"
    code = (
        "import sys\n"
        "for name in ('anny', 'open3d', 'warp', 'pymeshlab'):\n"
        "    sys.modules[name] = None\n"
        "from mould.cli import main\n"
        f"assert main(['-q', 'synth', {str(samples)!r}, '--count', '2', '--resolution', '64']) == 0\n"
        f"sys.exit(main(['-q', 'train', '--config', 'tiny', '--data', 'synth@64', '--val', {str(samples)!r},\n"
        f"    '--val-meshes', '0', '--out', {str(run)!r}, '--steps', '2', '--batch-size', '2', '--workers', '1',\n"
        "    '--threads', '1']))\n"
    )
    env = {**os.environ, "MOULD_BODY_BANK": str(bank_path())}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    from mould.datasets.samples import read_sample

    mould, params = read_sample(samples, "0000001")
    assert mould.has_normals and mould.back_image is not None and mould.mask.sum() > 20
    assert params["generator_version"] >= 4
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000002"


def test_bad_stream_specs_are_refused(tmp_path):
    from mould.cli import main

    folder = make_samples(tmp_path / "folder", 2)  # 64² crops
    for spec in (f"synth@32,{folder}", "synth@48", "synth,synth@64"):
        assert main(["train", "--config", "tiny", "--data", spec, "--out", str(tmp_path / "run")]) == 2
    with pytest.raises(InputError, match="synth@8"):
        open_stream(8, 0, torch.device("cpu"))


def test_a_gpu_run_renders_its_stream_on_the_gpu_unless_told_the_workers_make_it(tmp_path):
    # The fallback should the GPU renderer fail (tools/gpu_stream_train.sh retries with it): a torch.device
    # named cuda is only a name here, nothing is allocated on it.
    from mould.training.config import make_train_config
    from mould.training.setup import open_training_data

    cuda = torch.device("cuda")
    for render, mode in (("device", "draws"), ("workers", "records")):
        config = make_train_config("tiny", data=((Path("synth@64"), 1.0),), out=tmp_path, stream_render=render)
        assert open_training_data(config, 64, cuda).stream.mode == mode
    config = make_train_config("tiny", data=((Path("synth@64"), 1.0),), out=tmp_path)
    assert open_training_data(config, 64, torch.device("cpu")).stream.mode == "records"


def test_a_stream_crops_its_backgrounds_from_the_photos_of_backgrounds(tmp_path, capsys):
    """``mould train --backgrounds DIR``: 90 % of a stream's samples stand on crops of DIR's photos (a
    uniform green photo here, so a crop's pixels are known), the rest on procedural backgrounds; the option
    without a stream, or a folder without images, is one line and exit 2."""
    from PIL import Image

    from mould.cli import main
    from mould.training.config import make_train_config
    from mould.training.setup import open_training_data

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (90, 60), (10, 200, 30)).save(photos / "lawn.png")
    config = make_train_config("tiny", data=((Path("synth@64"), 1.0),), out=tmp_path / "run", backgrounds=photos)
    stream = open_training_data(config, 64, torch.device("cpu")).stream
    assert stream.config.backgrounds == (photos / "lawn.png",)
    lawn = torch.tensor([10, 200, 30]) / 255
    on_the_lawn = 0
    for key in range(10):
        corners = stream.draw(key)["image"][:, [0, 0, -1, -1], [0, -1, 0, -1]].T  # (4, 3) RGB in [0, 1]
        on_the_lawn += bool(torch.allclose(corners, lawn.expand(4, 3), atol=0.08))  # sensor noise: ~0.03
    assert on_the_lawn >= 6  # 9 of 10 expected; a procedural background is never this green at 4 corners

    folder = make_samples(tmp_path / "folder", 2)
    run = ["train", "--config", "tiny", "--out", str(tmp_path / "run2"), "--steps", "1"]
    assert main([*run, "--data", str(folder), "--backgrounds", str(photos)]) == 2
    assert "only a synth stream draws backgrounds" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([*run, "--data", "synth@64", "--backgrounds", str(tmp_path / "empty")]) == 2
    assert "holds no PNG or JPEG image" in capsys.readouterr().err

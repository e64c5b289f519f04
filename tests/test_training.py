"""``mould train`` end to end on a tiny synthetic set (CPU): checkpoints, metrics, resume, bad input.

The samples are capsules of random proportions seen from random sides at 64² (the tiny model takes any
multiple of 64), encoded with the real encoder and shaded by their true normals, so a run takes seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, make_samples, metrics

from mould.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """(training folder of 12 samples, validation folder of 3)."""
    root = tmp_path_factory.mktemp("samples")
    return make_samples(root / "train", 12), make_samples(root / "val", 3, seed=1)


def train(run: Path, train_dir: Path, *options: str) -> int:
    return main(["-q", "train", *TINY, "--data", str(train_dir), "--out", str(run), *options])


def test_two_steps_write_a_checkpoint_and_resume_continues_at_step_3(tmp_path, data):
    from mould.models.checkpoint import load_checkpoint

    from mould.training.state import latest_checkpoint, load_training_state, state_path

    run = tmp_path / "run"
    # Adversarial from step 1, so both networks' updates and states are exercised.
    val = ["--val", str(data[1]), "--val-meshes", "1"]
    assert train(run, data[0], "--steps", "2", "--adversarial-start", "1", *val) == 0
    weights = latest_checkpoint(run)
    assert weights == run / "checkpoints" / "step_000002.safetensors"
    model, config, metadata = load_checkpoint(weights)
    assert config.name == "tiny" and metadata["step"] == "2"
    state = load_training_state(state_path(weights))  # weights_only: plain data only
    assert state["step"] == 2 and state["consumed"] == 4 and state["discriminator"] is not None
    rows = metrics(run)
    assert {int(row["step"]) for row in rows} == {1, 2}
    assert all(math.isfinite(float(row["value"])) for row in rows)
    tags = {row["tag"] for row in rows}
    assert {"train/total", "train/visible", "train/hidden", "train/mask", "train/d_total", "train/lr",
            "val/visible_l1_mm", "val/hidden_l1_mm", "val/silhouette_iou", "val/p2s_mm"} <= tags  # fmt: skip
    assert any((run / "tensorboard").iterdir()) and any((run / "images").iterdir())

    assert train(run, data[0], "--steps", "3", "--adversarial-start", "1", *val, "--resume") == 0
    assert latest_checkpoint(run).name == "step_000003.safetensors"
    assert {int(row["step"]) for row in metrics(run)} == {1, 2, 3}
    info = json.loads((run / "run.json").read_text())
    assert info["step"] == 3 and info["status"] == "finished"
    assert [(s["first_step"], s["last_step"]) for s in info["sessions"]] == [(0, 2), (2, 3)]


def test_sampler_resumes_and_shards_the_same_stream():
    from mould.training.sampler import StepBatchSampler

    whole = list(StepBatchSampler(7, 3, 6, seed=4))
    assert list(StepBatchSampler(7, 3, 6, seed=4)) == whole  # deterministic
    assert list(StepBatchSampler(7, 3, 4, seed=4, start=2 * 3)) == whole[2:]  # resume from a position
    assert list(StepBatchSampler(7, 3, 6, seed=5)) != whole
    # Every epoch is a permutation: the first 7 positions hold each index once.
    flat = [item for batch in whole for item in batch]
    assert sorted(index for epoch, index in flat[:7]) == list(range(7)) and {e for e, _ in flat[:7]} == {0}
    # Two ranks of batch 3 split the global batches of one process with batch 6, in rank order.
    global_batches = list(StepBatchSampler(7, 6, 3, seed=4))
    ranks = [list(StepBatchSampler(7, 3, 3, seed=4, rank=r, world_size=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*ranks)] == global_batches


def test_learning_rate_warms_up_then_decays_to_the_floor():
    from mould.training.setup import lr_factor

    assert lr_factor(0, 10, 100, 0.05) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.05) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.05) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.05) == pytest.approx(0.05 + 0.95 * 0.5)  # half way down the cosine
    assert lr_factor(100, 10, 100, 0.05) == pytest.approx(0.05)
    assert lr_factor(500, 10, 100, 0.05) == pytest.approx(0.05)


def test_learning_rate_decays_with_the_time_spent_when_it_runs_ahead_of_the_steps():
    from mould.training.setup import lr_factor

    assert lr_factor(5, 10, 100, 0.05, time_fraction=0.9) == pytest.approx(0.6)  # warming up: steps rule
    assert lr_factor(55, 10, 100, 0.05, time_fraction=0.1) == lr_factor(55, 10, 100, 0.05)  # steps ahead
    assert lr_factor(20, 10, 100, 0.05, time_fraction=0.5) == pytest.approx(0.05 + 0.95 * 0.5)
    assert lr_factor(20, 10, 100, 0.05, time_fraction=1.0) == pytest.approx(0.05)


class StepClock:
    """A stand-in for the training loop's ``time`` module whose clock moves one second per training step and
    never otherwise: a time-limited run then stops at a known step on any machine."""

    def __init__(self) -> None:
        import time

        self.now, self.strftime = 0.0, time.strftime

    def perf_counter(self) -> float:
        return self.now


def test_a_time_limit_ends_the_run_decayed_validated_and_saved(tmp_path, data, monkeypatch):
    from mould.training import loop
    from mould.training.setup import lr_factor
    from mould.training.state import latest_checkpoint
    from mould.training.updater import Updater

    clock = StepClock()
    monkeypatch.setattr(loop, "time", clock)
    real_step = Updater.step

    def step_of_one_second(self, *args, **kwargs):
        values = real_step(self, *args, **kwargs)
        clock.now += 1.0
        return values

    monkeypatch.setattr(Updater, "step", step_of_one_second)
    run = tmp_path / "run"
    options = ["--steps", "100", "--warmup-steps", "1", "--lr", "1e-3", "--adversarial-start", "0.5"]
    options += ["--val", str(data[1]), "--val-meshes", "0", "--val-every", "1000", "--ckpt-every", "1000"]
    assert train(run, data[0], *options, "--time-limit", "5.5") == 0
    # 5.5 s at one second a step: the run ends after step 6, with a checkpoint and a validation pass.
    assert latest_checkpoint(run).name == "step_000006.safetensors"
    rows = metrics(run)
    assert {int(row["step"]) for row in rows if row["tag"] == "val/visible_l1_mm"} == {6}
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 6 and info["elapsed_s"] == 6.0
    # Step j (0-based) ran at the rate the schedule set after step j - 1, when (j - 1) s of 5.5 were spent;
    # without the limit it would still be at the top of a 100-step cosine.
    lr = {int(row["step"]) - 1: float(row["value"]) for row in rows if row["tag"] == "train/lr"}
    expected = {j: 1e-3 * lr_factor(j, 1, 100, 0.05, max(j - 1, 0) / 5.5) for j in range(6)}
    assert lr == pytest.approx(expected, rel=1e-6)
    assert lr[5] < 0.3e-3 < 0.99e-3 < 1e-3 * lr_factor(5, 1, 100, 0.05)
    # The adversarial term switched on at half the time (step 3: 3 s of 5.5 spent), not half the steps (50).
    adversarial = {int(row["step"]) - 1: float(row["value"]) for row in rows if row["tag"] == "train/adversarial"}
    assert adversarial == {0: 0.0, 1: 0.0, 2: 0.0, 3: 1.0, 4: 1.0, 5: 1.0}

    # Resumed with a longer limit, the run counts the time already spent: 8.5 s ends it after step 9.
    assert train(run, data[0], *options, "--time-limit", "8.5", "--resume") == 0
    assert latest_checkpoint(run).name == "step_000009.safetensors"
    # Out of time already: nothing to do.
    assert train(run, data[0], *options, "--time-limit", "8.5", "--resume") == 0
    assert latest_checkpoint(run).name == "step_000009.safetensors"


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    import random

    from mould.training.state import capture_rng, restore_rng

    state = capture_rng()
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expected = (random.random(), np.random.random(), torch.rand(3))
    restore_rng(torch.load(path, weights_only=True))
    again = (random.random(), np.random.random(), torch.rand(3))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])


def test_resumed_metrics_drop_what_was_logged_after_the_checkpoint(tmp_path):
    from mould.training.run_log import HEADER, truncate_metrics

    path = tmp_path / "metrics.csv"
    path.write_text(
        ",".join(HEADER) + "\n1,0.1,train/total,2\n2,0.2,train/total,1.5\n3,0.3,train/total,1\n4,0.4,tr"
    )
    truncate_metrics(path, 2)  # the last line was cut short by a kill
    assert path.read_text().splitlines() == [",".join(HEADER), "1,0.1,train/total,2", "2,0.2,train/total,1.5"]


def test_bad_input_gets_one_line_and_exit_2(tmp_path, data, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--data", str(empty), "--out", str(tmp_path / "a")], "no samples found"),
        (["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "b")], "not a folder"),
        (["--data", str(data[0]), "--out", str(tmp_path / "c"), "--resume"], "holds no checkpoint"),
        (["--data", str(data[0]), "--out", str(tmp_path / "d"), "--steps", "0"], "--steps"),
    ]
    for options, message in cases:
        assert main(["-q", "train", "--config", "tiny", *options]) == 2
        error = capsys.readouterr().err.strip()
        assert message in error and len(error.splitlines()) == 1, error
    assert main(["-q", "train", "--config", "huge", "--data", str(data[0]), "--out", str(tmp_path / "e")]) == 2
    assert "unknown config 'huge'" in capsys.readouterr().err


class Payload:
    """Anything but plain data: ``torch.load(weights_only=True)`` must refuse to unpickle it."""


# -- bad input: one line, exit 2 ------------------------------------------------------------------------------


def test_incompatible_or_pickled_checkpoints_are_refused(tmp_path, data, capsys):
    run = tmp_path / "run"
    assert train(run, data[0], "--steps", "1") == 0
    capsys.readouterr()
    assert train(run, data[0], "--steps", "2") == 2  # a new run must not overwrite an old one
    assert "already holds a run" in capsys.readouterr().err
    options = ["-q", "train", "--config", "small", "--workers", "0", "--threads", "1", "--data", str(data[0])]
    options += ["--out", str(run)]
    assert main([*options, "--resume"]) == 2
    assert "incompatible checkpoint" in capsys.readouterr().err

    torch.save({"format": 1, "payload": Payload()}, run / "checkpoints" / "step_000001_state.pt")
    assert train(run, data[0], "--steps", "2", "--resume") == 2
    error = capsys.readouterr().err
    assert "not a readable training state" in error and len(error.strip().splitlines()) == 1


def test_sessions_started_in_the_same_second_stay_apart(tmp_path):
    # A quick run and its resume can start within one second; each keeps its own entry in run.json.
    from mould.training.run_info import update_run_info

    first = {"id": "a", "started": "2026-01-01T00:00:00+0000", "first_step": 0}
    update_run_info(tmp_path, first)
    update_run_info(tmp_path, {**first, "last_step": 2})  # the same session, written again
    info = update_run_info(tmp_path, {"id": "b", "started": first["started"], "first_step": 2})
    assert [(s["id"], s["first_step"]) for s in info["sessions"]] == [("a", 0), ("b", 2)]
    assert info["sessions"][0]["last_step"] == 2


def test_init_starts_from_given_weights_and_refuses_another_config(tmp_path, data, capsys):
    from mould.models.checkpoint import load_checkpoint

    from mould.training.state import latest_checkpoint

    source = tmp_path / "source"
    assert train(source, data[0], "--steps", "2", "--adversarial-weight", "0") == 0
    start = latest_checkpoint(source)
    # A tiny learning rate: after one step the weights are still those of --init, not a random draw.
    tuned = tmp_path / "tuned"
    assert train(tuned, data[0], "--steps", "1", "--lr", "1e-9", "--seed", "5", "--init", str(start)) == 0
    before = dict(load_checkpoint(start)[0].named_parameters())
    after = dict(load_checkpoint(latest_checkpoint(tuned))[0].named_parameters())
    assert max(float((after[k] - before[k]).detach().abs().max()) for k in before) < 1e-6

    other = tmp_path / "other.safetensors"
    from mould.models import build_model
    from mould.models.checkpoint import save_checkpoint
    from mould.models.configs import CONFIGS

    save_checkpoint(other, build_model("small"), CONFIGS["small"])
    assert train(tmp_path / "bad", data[0], "--steps", "1", "--init", str(other)) == 2
    assert "incompatible checkpoint for --init" in capsys.readouterr().err

    # A checkpoint of the same config but from before the back-colour head (the first shipped small) starts
    # the run with the head added: the depth and silhouette weights are its own.
    import dataclasses

    old_config = dataclasses.replace(CONFIGS["tiny"], back_colour=False, back_branch=0)
    old_model = build_model(old_config)
    save_checkpoint(tmp_path / "old.safetensors", old_model, old_config)
    headed = tmp_path / "headed"
    assert train(headed, data[0], "--steps", "1", "--lr", "1e-9", "--init", str(tmp_path / "old.safetensors")) == 0
    after = dict(load_checkpoint(latest_checkpoint(headed))[0].named_parameters())
    assert float((after["stem_full.weight"] - old_model.stem_full.weight).detach().abs().max()) < 1e-6


def test_init_widens_a_narrower_model_and_refuses_to_narrow(tmp_path, data, capsys):
    from mould.models import build_model
    from mould.models.checkpoint import load_checkpoint, save_checkpoint
    from mould.models.configs import CONFIGS

    from mould.training.state import latest_checkpoint

    torch.manual_seed(2)
    small = build_model("small")
    save_checkpoint(tmp_path / "small.safetensors", small, CONFIGS["small"])
    options = ["--workers", "0", "--threads", "1", "--batch-size", "2", "--data", str(data[0]), "--steps", "1"]
    run = tmp_path / "medium"
    command = ["-q", "train", "--config", "medium", *options, "--out", str(run), "--lr", "1e-9"]
    assert main([*command, "--init", str(tmp_path / "small.safetensors")]) == 0
    medium, config, _ = load_checkpoint(latest_checkpoint(run))
    assert config.name == "medium"
    weight, old = medium.stacks[1].after[1].weight.detach(), small.stacks[1].after[1].weight.detach()
    assert weight.shape[0] == 2 * old.shape[0]
    assert float((weight[:64, :64] - old).abs().max()) < 1e-6  # the old block, one step of lr 1e-9 later
    assert float(weight[:64, 64:].abs().max()) < 1e-6  # read through zeros
    capsys.readouterr()
    narrow = ["-q", "train", "--config", "small", *options, "--out", str(tmp_path / "narrow")]
    assert main([*narrow, "--init", str(latest_checkpoint(run))]) == 2
    assert "incompatible checkpoint for --init" in capsys.readouterr().err


def test_trainable_back_trains_the_back_colour_branch_and_nothing_else(tmp_path, capsys):
    from mould.models.checkpoint import load_checkpoint

    from mould.training.state import latest_checkpoint

    samples = make_samples(tmp_path / "backs", 6, seed=3, back_colour=True)
    source = tmp_path / "source"
    assert train(source, samples, "--steps", "2", "--adversarial-weight", "0") == 0
    start = latest_checkpoint(source)
    tuned = tmp_path / "tuned"
    assert train(tuned, samples, "--steps", "3", "--lr", "1e-2", "--trainable", "back", "--init", str(start)) == 0
    before_model = load_checkpoint(start)[0]
    after_model = load_checkpoint(latest_checkpoint(tuned))[0]
    before, after = before_model.state_dict(), after_model.state_dict()
    moved = {name for name in before if not torch.equal(before[name], after[name])}
    # Only the branch, and all of its layers (BatchNorm statistics included: the run stays in evaluation mode).
    assert moved == {name for name in before if name.startswith("back_branch.")}, moved

    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        old, new = before_model.eval()(image)[-1], after_model.eval()(image)[-1]
    for key in ("visible", "hidden", "mask_logits"):
        assert torch.equal(old[key], new[key]), key
    assert float((old["back"] - new["back"]).abs().max()) > 1e-3

    capsys.readouterr()
    assert train(tmp_path / "bad", samples, "--steps", "1", "--trainable", "back") == 2
    error = capsys.readouterr().err.strip()
    assert "--trainable back: needs --init" in error and len(error.splitlines()) == 1


def test_the_nobody_samples_tool_writes_crops_of_nobody(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from mould.datasets.folder import SampleFolder
    from mould.models import CONFIGS, build_model, save_checkpoint

    root = Path(__file__).resolve().parents[1]
    torch.manual_seed(0)  # the untrained net's silhouettes decide how many crops the search keeps
    net = save_checkpoint(tmp_path / "tiny.safetensors", build_model("tiny"), CONFIGS["tiny"])
    command = [sys.executable, str(root / "tools" / "nobody_samples.py"), str(tmp_path / "nobody")]
    done = subprocess.run(
        [*command, "--count", "1", "--seed", "3", "--checkpoint", str(net)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    folder = SampleFolder(tmp_path / "nobody")
    assert folder.size >= 2  # the whole background, then the crop(s) the search looked at on another
    moulds = [folder.load_mould(index) for index in range(folder.size)]
    assert all(not m.mask.any() and m.image.shape == (256, 256, 3) for m in moulds)
    from mould.datasets.backdrops import backdrop_image

    np.testing.assert_array_equal(moulds[0].image, backdrop_image(3 * 10**6, 256, 0.5))
    # --resolution: the same crops, shrunk by area averaging (a network trained at 64² sees them so).
    from PIL import Image

    done = subprocess.run([*command[:2], str(tmp_path / "small"), "--count", "1", "--seed", "3", "--resolution",
                           "64", "--checkpoint", str(net)], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    small = SampleFolder(tmp_path / "small")
    assert small.size == folder.size and small.load_mould(0).mask.shape == (64, 64)
    shrunk = Image.fromarray(moulds[0].image).resize((64, 64), Image.BOX)
    np.testing.assert_array_equal(small.load_mould(0).image, np.asarray(shrunk))
    # With --backgrounds, most backgrounds are crops of the photos (a uniform one here: its colour).
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(tmp_path / "photos" / "lawn.png")
    photos = ["--backgrounds", str(tmp_path / "photos"), "--checkpoint", str(net)]
    done = subprocess.run([*command[:2], str(tmp_path / "real"), "--count", "3", "--seed", "3", *photos],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = SampleFolder(tmp_path / "real")
    images = [folder.load_mould(index).image for index in range(folder.size)]
    assert sum(bool((image == [10, 200, 30]).all()) for image in images) >= folder.size // 2
    elsewhere = [*command[:2], str(tmp_path / "never"), "--checkpoint", str(tmp_path / "gone.safetensors")]
    bad = subprocess.run(elsewhere, capture_output=True, text=True)
    assert bad.returncode == 2 and "gone.safetensors" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "never").exists()  # no partial output
    bad = subprocess.run(
        [*command[:2], str(tmp_path / "large"), "--resolution", "512"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--resolution 16 to 256" in bad.stderr and not (tmp_path / "large").exists()

"""A training run stopped by a signal and resumed ends with the same weights as an uninterrupted run.

CPU arithmetic is deterministic for a fixed thread count, and the trainer restores everything that
drives a step (weights, Adam moments, schedules, RNG states, data position), so equality is exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, make_samples, metrics
from safetensors.torch import load_file

from mould.cli import main

STEPS = 24
OPTIONS = [*TINY, "--steps", str(STEPS), "--ckpt-every", "4", "--adversarial-start", "6", "--seed", "3"]
TIMING_TAGS = ("train/steps_per_s", "train/data_wait_fraction")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_samples(tmp_path_factory.mktemp("samples") / "train", 10, seed=2)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data) -> Path:
    """The uninterrupted run."""
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(["-q", "train", *OPTIONS, "--data", str(data), "--out", str(run)]) == 0
    return run


def start(run: Path, data: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "mould.cli", "-q", "train", *OPTIONS, "--data", str(data), "--out", str(run)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})


def wait_for_checkpoint(run: Path, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not (run / "checkpoints" / "latest").is_file():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.02)


def latest_step(run: Path) -> int:
    return int((run / "checkpoints" / "latest").read_text().strip().split("_")[1])


def assert_same_run(run: Path, reference: Path) -> None:
    final = f"step_{STEPS:06d}"
    ours = load_file(run / "checkpoints" / f"{final}.safetensors")
    theirs = load_file(reference / "checkpoints" / f"{final}.safetensors")
    assert ours.keys() == theirs.keys()
    unequal = [key for key in ours if not torch.equal(ours[key], theirs[key])]
    assert not unequal, f"{len(unequal)} tensors differ, e.g. {unequal[:3]}"
    states = [torch.load(r / "checkpoints" / f"{final}_state.pt", weights_only=True) for r in (run, reference)]
    for key, value in states[1]["discriminator"].items():
        assert torch.equal(states[0]["discriminator"][key], value), key
    assert states[0]["consumed"] == states[1]["consumed"]

    def figures(path: Path) -> list[tuple]:
        return [(row["step"], row["tag"], row["value"]) for row in metrics(path) if row["tag"] not in TIMING_TAGS]

    assert figures(run) == figures(reference)  # every logged loss, none twice, none missing


def test_killed_run_resumes_to_the_same_weights(tmp_path, data, reference):
    run = tmp_path / "run"
    process = start(run, data)
    wait_for_checkpoint(run, process)
    process.kill()  # SIGKILL: no chance to clean up; only the atomic checkpoint files survive
    process.wait()
    stopped = latest_step(run)
    assert stopped < STEPS, "the run ended before it was killed: the test proves nothing"
    assert main(["-q", "train", *OPTIONS, "--data", str(data), "--out", str(run), "--resume"]) == 0
    assert_same_run(run, reference)


@pytest.mark.slow  # ~12 s; the SIGKILL test above covers resuming, this one the clean stop
def test_sigterm_stops_with_a_checkpoint_and_resumes_to_the_same_weights(tmp_path, data, reference):
    run = tmp_path / "run"
    process = start(run, data)
    wait_for_checkpoint(run, process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["step"] == latest_step(run) < STEPS
    assert "--resume" in output
    assert main(["-q", "train", *OPTIONS, "--data", str(data), "--out", str(run), "--resume"]) == 0
    assert_same_run(run, reference)


def test_sigterm_to_the_process_group_stops_with_a_checkpoint(tmp_path, data):
    # `timeout`, Slurm and `kill -- -PGID` signal the DataLoader workers too; the run must still save the
    # step it stopped at rather than die of the workers' deaths.
    run = tmp_path / "run"
    options = [*OPTIONS, "--workers", "1", "--ckpt-every", "1000"]  # the only checkpoint is the stop's
    command = [sys.executable, "-m", "mould.cli", "-q", "train", *options, "--data", str(data), "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while not (run / "metrics.csv").is_file() or not any(row["tag"].startswith("train/") for row in metrics(run)):
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "no training step in time"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and 1 <= info["step"] < STEPS
    assert latest_step(run) == info["step"]


@pytest.mark.slow  # ~25 s: two runs that generate their samples; the stream's positions are tested fast
def test_a_killed_run_streaming_synthetic_samples_resumes_to_the_same_weights(tmp_path, data):
    """``--data synth``: the stream continues where the checkpoint stopped, mixed with a folder."""
    options = [*TINY, "--steps", "6", "--ckpt-every", "2", "--adversarial-start", "3", "--seed", "3"]
    spec = f"synth@64:1,{data}:1"
    reference = tmp_path / "reference"
    assert main(["-q", "train", *options, "--data", spec, "--out", str(reference)]) == 0
    run = tmp_path / "run"
    command = [sys.executable, "-m", "mould.cli", "-q", "train", *options, "--data", spec, "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_checkpoint(run, process)
    process.kill()
    process.wait()
    assert latest_step(run) < 6, "the run ended before it was killed: the test proves nothing"
    assert main(["-q", "train", *options, "--data", spec, "--out", str(run), "--resume"]) == 0
    ours = load_file(run / "checkpoints" / "step_000006.safetensors")
    theirs = load_file(reference / "checkpoints" / "step_000006.safetensors")
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)


def checkpoint_steps(run: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.safetensors"))


def test_older_checkpoints_are_deleted_unless_asked_to_keep_them(tmp_path, data, reference):
    assert checkpoint_steps(reference) == [16, 20, 24]  # every 4 steps, the newest three by default
    run = tmp_path / "run"
    options = [*TINY, "--steps", "8", "--ckpt-every", "2", "--keep-checkpoints", "10", "--seed", "3"]
    assert main(["-q", "train", *options, "--data", str(data), "--out", str(run)]) == 0
    assert checkpoint_steps(run) == [2, 4, 6, 8]
    assert sorted(p.name for p in (run / "checkpoints").glob("*_state.pt")) == [
        f"step_{step:06d}_state.pt" for step in (2, 4, 6, 8)
    ]

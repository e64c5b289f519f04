"""``tools/gpu_stream_train.sh``, the GPU lease in one command, end to end on the CPU with tiny settings and
every package but torch, numpy, scipy, Pillow and safetensors blocked (what the GPU machine may lack):
staging, bank, benchmark, streaming training, the files that come back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("anny", "open3d", "warp", "pymeshlab", "trimesh", "imageio", "tqdm", "tensorboard", "matplotlib",
          "numba", "isal", "av", "onnxruntime")  # fmt: skip
"""Packages the GPU machine may lack: the recipe must run with torch, numpy, scipy, Pillow and safetensors."""


def blocked_environment(tmp_path: Path) -> dict[str, str]:
    """The environment of a Python that cannot import the :data:`ABSENT` packages."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nfor name in " + repr(ABSENT) + ":\n    sys.modules[name] = None\n"
    )
    return {**os.environ, "PYTHONPATH": str(blocker)}


@pytest.mark.slow  # ~2-3 minutes on the 2-core machine: three commands start worker processes
def test_gpu_recipe_runs_on_the_cpu_from_a_plain_copy(tmp_path):
    from mould.datasets.bank import bank_path
    from mould.models import build_model
    from mould.models.checkpoint import save_checkpoint
    from mould.models.configs import CONFIGS

    save_checkpoint(tmp_path / "start.safetensors", build_model("tiny"), CONFIGS["tiny"])
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (90, 60), (10, 200, 30)).save(tmp_path / "photos" / "lawn.png")
    # Relative paths, as a user types them: the script runs its commands elsewhere.
    command = [
        "bash", str(ROOT / "tools" / "gpu_stream_train.sh"), "--out", "out", "--time-limit", "300",
        "--bank", str(bank_path()), "--config", "tiny", "--init", "start.safetensors", "--device", "cpu",
        "--resolution", "64", "--batch-size", "2", "--workers", "1", "--bench-seconds", "3", "--synth-count", "3",
        "--val-count", "2", "--python", sys.executable, "--backgrounds", "photos", "--negatives", "2",
    ]  # fmt: skip
    out = tmp_path / "out"
    done = subprocess.run(command, cwd=tmp_path, env=blocked_environment(tmp_path), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = sorted(path.name for path in out.iterdir())
    assert {"bench.json", "metrics.csv", "run.json", "summary.txt", "synth.log", "train.log"} <= set(files)
    assert any(name.endswith(".safetensors") for name in files) and len(files) <= 8
    assert json.loads((out / "bench.json").read_text())["samples"] > 0
    assert "waiting for data" in (out / "summary.txt").read_text()
    run = json.loads((out / "run.json").read_text())
    sources = {Path(source["path"]).name: source for source in run["data"]}
    assert sources.keys() == {"synth", "nobody"} and sources["synth"]["samples"] == "stream" and run["step"] >= 1
    # Crops of nobody (2 backgrounds whole, and what the framing search looked at on 2 more) mixed in 1:20.
    assert sources["nobody"]["weight"] == 0.05 and sources["nobody"]["samples"] >= 2
    assert "samples of nobody from 4 backgrounds" in (out / "synth.log").read_text()
    # The trainer stopped itself at its time limit (not by the safety net's SIGTERM), decayed, from --init.
    assert run["status"] == "finished" and run["train_config"]["time_limit"] > 0
    assert run["train_config"]["init"] == str(tmp_path / "start.safetensors")
    assert run["train_config"]["backgrounds"] == str(tmp_path / "photos")
    rows = (out / "metrics.csv").read_text().splitlines()
    lr = [float(row.split(",")[3]) for row in rows if ",train/lr," in row]
    assert lr[-1] < 0.5 * max(lr)


@pytest.mark.slow  # ~2 minutes
def test_gpu_recipe_trains_on_the_workers_samples_when_the_generator_fails_on_its_device(tmp_path):
    from mould.datasets.bank import bank_path

    # A generator batch of 0 makes the benchmark fail, as a broken GPU renderer would.
    command = [
        "bash", str(ROOT / "tools" / "gpu_stream_train.sh"), "--out", str(tmp_path / "out"),
        "--time-limit", "150", "--bank", str(bank_path()), "--config", "tiny", "--device", "cpu",
        "--gen-batch", "0", "--resolution", "64", "--batch-size", "2", "--workers", "1", "--bench-seconds", "3",
        "--val-count", "2", "--python", sys.executable, "--negatives", "0",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=blocked_environment(tmp_path), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the CPU workers make the samples" in (tmp_path / "out" / "synth.log").read_text()
    assert "benchmark failed" in (tmp_path / "out" / "summary.txt").read_text()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["status"] == "finished" and run["step"] >= 1 and run["train_config"]["stream_render"] == "workers"


def test_gpu_recipe_refuses_a_missing_bank(tmp_path):
    script = ROOT / "tools" / "gpu_stream_train.sh"
    done = subprocess.run(["bash", str(script), "--out", str(tmp_path), "--time-limit", "60", "--bank",
                           str(tmp_path / "nope.safetensors")], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "body bank" in done.stderr and len(done.stderr.splitlines()) == 1


def test_gpu_recipe_refuses_a_missing_backgrounds_folder(tmp_path):
    script = ROOT / "tools" / "gpu_stream_train.sh"
    (tmp_path / "bank.safetensors").write_bytes(b"")  # only its presence is checked before the folder
    done = subprocess.run(["bash", str(script), "--out", str(tmp_path), "--time-limit", "60", "--bank",
                           str(tmp_path / "bank.safetensors"), "--backgrounds", str(tmp_path / "nope")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "--backgrounds: no such folder" in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("count", ["-1", "many", "100000"])
def test_gpu_recipe_refuses_a_bad_count_of_negatives(tmp_path, count):
    script = ROOT / "tools" / "gpu_stream_train.sh"
    (tmp_path / "bank.safetensors").write_bytes(b"")  # only its presence is checked before the count
    done = subprocess.run(["bash", str(script), "--out", str(tmp_path), "--time-limit", "60", "--bank",
                           str(tmp_path / "bank.safetensors"), "--negatives", count],
                          capture_output=True, text=True)  # fmt: skip
    assert (
        done.returncode == 2
        and f"--negatives: expected a count of backgrounds from 0 to 99999, got '{count}'" in done.stderr
    )
    assert len(done.stderr.splitlines()) == 1

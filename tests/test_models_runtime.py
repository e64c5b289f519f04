"""The runtime rule, the cached ONNX export against torch, and reconstruction without importing torch."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mould.models import CONFIGS, build_model, save_checkpoint
from mould.models import runtime as rt
from mould.models.inference import TorchPredictor
from mould.models.runtime import OnnxPredictor, cached_export, choose_runtime, load_predictor

from mould.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    """A tiny network with the back-colour head, its BatchNorm statistics made non-trivial."""
    import torch

    torch.manual_seed(3)
    model = build_model(CONFIGS["tiny"])
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(tmp_path / "tiny.safetensors", model.eval(), CONFIGS["tiny"])


def test_the_runtime_rule(monkeypatch):
    monkeypatch.setattr(rt, "onnxruntime_installed", lambda: True)
    monkeypatch.setattr(rt, "nvidia_driver_present", lambda: False)
    assert choose_runtime("auto", "cpu") == "onnx" and choose_runtime("auto", "auto") == "onnx"
    assert choose_runtime("auto", "cuda") == "torch" and choose_runtime("torch", "cpu") == "torch"
    with pytest.raises(InputError, match="--runtime onnx runs on the CPU"):
        choose_runtime("onnx", "cuda")
    monkeypatch.setattr(rt, "nvidia_driver_present", lambda: True)  # a GPU machine: auto may mean CUDA
    assert choose_runtime("auto", "auto") == "torch" and choose_runtime("auto", "cpu") == "onnx"
    monkeypatch.setattr(rt, "onnxruntime_installed", lambda: False)
    assert choose_runtime("auto", "cpu") == "torch"
    with pytest.raises(InputError, match="needs onnxruntime"):
        choose_runtime("onnx", "cpu")


def test_the_export_predicts_what_torch_predicts(tiny_checkpoint):
    import torch
    from mould.models.checkpoint import load_checkpoint

    onnx = OnnxPredictor(cached_export(tiny_checkpoint, resolution=64))
    model, _, _ = load_checkpoint(tiny_checkpoint)
    crops = np.random.default_rng(5).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    expected, got = TorchPredictor(model).predict_crops(crops), onnx.predict_crops(crops)
    assert onnx.config == CONFIGS["tiny"] and got.visible.shape == (3, 64, 64) and got.back.shape == (3, 64, 64, 3)
    for name in ("visible", "hidden", "mask_prob"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=0, atol=1e-4)
    assert np.abs(got.back.astype(int) - expected.back).max() <= 1
    # One crop alone gives what it gave in the batch: the batch axis is free.
    np.testing.assert_allclose(onnx.predict_crops(crops[1:2]).visible[0], got.visible[1], rtol=0, atol=1e-5)
    with torch.no_grad():  # the maps are the network's: mask probability is the sigmoid of its logits
        logits = model(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255)[-1]["mask_logits"]
    np.testing.assert_allclose(got.mask_prob, torch.sigmoid(logits)[:, 0].numpy(), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="crops"):
        onnx.predict_crops(crops[:, :32, :32])


def test_exports_are_cached_by_checkpoint_and_code(tiny_checkpoint, monkeypatch, tmp_path):
    first = cached_export(tiny_checkpoint, resolution=64)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr("mould.models.onnx.export_onnx", no_export)
    assert cached_export(tiny_checkpoint, resolution=64) == first  # from the cache
    other = tmp_path / "other.safetensors"
    other.write_bytes(tiny_checkpoint.read_bytes() + b" ")  # other bytes: another name
    assert rt.export_key(other, 64) != rt.export_key(tiny_checkpoint, 64) != rt.export_key(tiny_checkpoint, 128)
    with pytest.raises(AssertionError, match="exported again"):
        cached_export(tiny_checkpoint, resolution=128)


def test_a_corrupt_onnx_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(InputError, match="bad.onnx: not a readable ONNX model"):
        OnnxPredictor(bad)


def test_load_predictor_runs_the_chosen_runtime(tiny_checkpoint):
    onnx, path, runtime = load_predictor(tiny_checkpoint, "cpu", "onnx", resolution=64)
    assert runtime == "onnx" and isinstance(onnx, OnnxPredictor) and path == tiny_checkpoint
    torch_network, _, runtime = load_predictor(tiny_checkpoint, "cpu", "torch", resolution=64)
    assert runtime == "torch" and isinstance(torch_network, TorchPredictor)


def test_auto_falls_back_to_torch_when_the_cache_cannot_serve(tiny_checkpoint, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=rt.__name__)  # a CLI run earlier in the session (-q) may mute it
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(rt, "cache_folder", lambda: blocker / "onnx")  # cannot be created
    network, _, runtime = load_predictor(tiny_checkpoint, "cpu", "auto", resolution=64)
    assert runtime == "torch" and isinstance(network, TorchPredictor)
    assert "cannot write the ONNX cache" in caplog.text and "running the network with torch" in caplog.text
    with pytest.raises(rt.OnnxUnavailable, match="cannot write the ONNX cache"):
        load_predictor(tiny_checkpoint, "cpu", "onnx", resolution=64)


def test_a_corrupt_cached_export_falls_back_and_says_which(tiny_checkpoint, caplog):
    caplog.set_level(logging.WARNING, logger=rt.__name__)
    cached = cached_export(tiny_checkpoint, resolution=64)
    cached.write_bytes(b"truncated")
    _, _, runtime = load_predictor(tiny_checkpoint, "cpu", "auto", resolution=64)
    assert runtime == "torch" and f"{cached}: not a readable ONNX model" in caplog.text
    cached.unlink()  # the next run exports again
    assert load_predictor(tiny_checkpoint, "cpu", "auto", resolution=64)[2] == "onnx"


def test_a_bad_checkpoint_is_one_error_not_a_fallback(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04 a pickle, not safetensors")
    with pytest.raises(InputError, match="bad.safetensors") as raised:
        load_predictor(bad, "cpu", "auto", resolution=64)
    assert not isinstance(raised.value, rt.OnnxUnavailable)


@pytest.mark.slow
def test_reconstruct_imports_no_torch_once_exported(tmp_path):
    """The command line, on the shipped model: the first run exports with torch; the next imports none."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    script = (
        "import sys; from mould.cli import main; "
        f"sys.argv = ['mould', 'reconstruct', {str(ROOT / 'examples' / 'person.png')!r}, '-o', sys.argv[1]]; "
        "code = main(); print('torch' in sys.modules); sys.exit(code)"
    )
    first = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a")], env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "b")], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "onnxruntime" in again.stderr and again.stdout.strip().endswith("False")
    assert (tmp_path / "b" / "person.glb").is_file() and (tmp_path / "b" / "person_preview.png").is_file()

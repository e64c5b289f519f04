"""The generator and the stream on a GPU: the same samples as the CPU makes, up to float round-off.

Marked ``gpu`` (skipped by default and without CUDA): run with ``pytest -m gpu`` on a GPU machine. Not run
yet: no GPU was available while this was written (see ``docs/synthetic-data.md``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import TINY, metrics

from mould.cli import main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_synth_on_the_gpu_makes_the_cpu_samples(tmp_path):
    from mould.datasets.samples import read_sample
    from mould.datasets.synthetic import SynthConfig, generate_sample

    out = tmp_path / "gpu"
    assert main(["-q", "synth", str(out), "--count", "24", "--resolution", "64", "--device", "cuda",
                 "--batch", "16", "--workers", "2"]) == 0  # fmt: skip
    config = SynthConfig(resolution=64)
    for index in (0, 7, 23):
        mould, params = read_sample(out, f"{index:07d}")
        expected, _, expected_params = generate_sample(index, 0, config)
        assert params["pose"] == expected_params["pose"] and params["outfit"] == expected_params["outfit"]
        assert (mould.mask != expected.mask).mean() < 2e-3
        both = mould.mask & expected.mask
        assert np.abs(mould.visible[both] - expected.visible[both]).max() < 1e-4
        assert np.abs(mould.image.astype(int) - expected.image.astype(int)).mean() < 2.0


def test_raster_on_the_gpu_matches_the_cpu(anny_body):
    from mould.datasets.raster import rasterize

    from mould.framing import frame_points

    vertices, faces = anny_body
    camera = frame_points(vertices, 256, yaw_deg=30)
    points = torch.as_tensor(camera.to_camera(vertices), dtype=torch.float32)
    intrinsics = torch.tensor([[camera.focal, camera.cx, camera.cy]])
    scene = torch.zeros(len(faces), dtype=torch.int64)
    faces = torch.as_tensor(faces)
    cpu = rasterize(points, faces, scene, intrinsics, 256)
    gpu = rasterize(points.cuda(), faces.cuda(), scene.cuda(), intrinsics.cuda(), 256)
    assert torch.equal(cpu.mask, gpu.mask.cpu()) and torch.equal(cpu.visible_face, gpu.visible_face.cpu())
    assert (cpu.visible - gpu.visible.cpu()).abs().max() < 1e-5


def test_streaming_training_on_the_gpu(tmp_path):
    run = tmp_path / "run"
    options = [
        "--steps",
        "4",
        "--device",
        "cuda",
        "--batch-size",
        "8",
        "--workers",
        "2",
        "--adversarial-start",
        "2",
    ]
    assert main(["-q", "train", *TINY, "--data", "synth@64", "--out", str(run), *options]) == 0
    rows = metrics(run)
    assert all(math.isfinite(float(row["value"])) for row in rows)
    assert any(row["tag"] == "train/data_wait_fraction" for row in rows)

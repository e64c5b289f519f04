"""Training on a GPU: mixed precision steps end with a finite loss and a checkpoint that loads on the CPU.

Marked ``gpu`` (skipped by default and without CUDA): run with ``pytest -m gpu`` on a GPU machine. The
shipped model's first stage exercised the same path at scale (bf16 on an H200; models/weights/README.md).
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY, make_samples, metrics

from mould.cli import main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_two_mixed_precision_steps_on_the_gpu(tmp_path, precision):
    from mould.models.checkpoint import load_checkpoint

    from mould.training.state import latest_checkpoint

    data = make_samples(tmp_path / "train", 4, seed=1)
    run = tmp_path / "run"
    options = ["--steps", "2", "--device", "cuda", "--precision", precision, "--adversarial-start", "1"]
    assert main(["-q", "train", *TINY, "--data", str(data), "--out", str(run), *options]) == 0
    assert all(math.isfinite(float(row["value"])) for row in metrics(run))
    model, config, metadata = load_checkpoint(latest_checkpoint(run), device="cpu")
    assert metadata["step"] == "2" and all(torch.isfinite(p).all() for p in model.parameters())

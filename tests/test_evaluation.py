"""``mould eval``: a report of a tiny checkpoint on two samples, and bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import TINY, make_samples

from mould.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    data = make_samples(root / "train", 4)
    run = root / "run"
    assert main(["-q", "train", *TINY, "--steps", "1", "--data", str(data), "--out", str(run)]) == 0
    return run / "checkpoints" / "step_000001.safetensors"


def test_eval_on_two_samples_writes_its_report(tmp_path, checkpoint, capsys):
    data = make_samples(tmp_path / "held_out", 3, seed=7, source_meshes=True)
    # s0000 loses its source mesh: its truth is then its true mould, meshed.
    params = json.loads((data / "s0000.json").read_text())
    (data / "s0000.json").write_text(json.dumps({**params, "mesh": None}))
    out = tmp_path / "report"
    options = ["--checkpoint", str(checkpoint), "--data", str(data), "--out", str(out), "--limit", "2"]
    assert main(["-q", "eval", *options, "--mesher", "stitch"]) == 0
    assert "2 samples scored" in capsys.readouterr().out
    with (out / "per_sample.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["name"] for row in rows] == ["s0000", "s0001"]
    assert [row["truth_mesh"] for row in rows] == ["mould", "source"]
    for row in rows:
        for column in ("visible_l1_mm", "hidden_l1_mm", "silhouette_iou"):
            assert np.isfinite(float(row[column]))
        assert row["mesh_error"] or all(np.isfinite(float(row[k])) for k in ("p2s_mm", "chamfer_mm", "fscore"))
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 2 and report["truth_mesh"] == {"source": 1, "mould": 1}
    means = [float(row["visible_l1_mm"]) for row in rows]
    assert report["means"]["visible_l1_mm"] == pytest.approx(np.mean(means), rel=1e-4)
    assert set(report["cases"]) == {"best", "median", "worst"}
    picture = iio.imread(out / "cases.png")
    assert picture.ndim == 3 and picture.shape[0] > 100


def test_eval_bad_input_gets_one_line_and_exit_2(tmp_path, checkpoint, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["-q", "eval", "--checkpoint", str(checkpoint), "--data", str(empty), "--out", str(tmp_path)]) == 2
    assert "no samples found" in capsys.readouterr().err
    data = make_samples(tmp_path / "data", 1)
    pickle = tmp_path / "model.safetensors"
    pickle.write_bytes(b"\x80\x04\x95" + bytes(32))  # a pickle's header: must be refused, never loaded
    assert (
        main(["-q", "eval", "--checkpoint", str(pickle), "--data", str(data), "--out", str(tmp_path / "r")]) == 2
    )
    error = capsys.readouterr().err
    assert "pickle" in error and len(error.strip().splitlines()) == 1
    run = tmp_path / "not_a_run"
    shutil.copytree(data, run)
    assert main(["-q", "eval", "--checkpoint", str(run), "--data", str(data), "--out", str(tmp_path / "s")]) == 2
    assert "without checkpoints/latest" in capsys.readouterr().err


def test_depth_scores_have_their_analytic_values():
    from mould.evaluation.predictions import MetricDepths
    from mould.evaluation.scores import depth_scores

    truth = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    truth[..., :2, :] = True  # 8 pixels
    predicted_mask = torch.zeros_like(truth)
    predicted_mask[..., 1:3, :] = True  # 8 pixels, 4 shared: IoU = 4 / 12
    visible = torch.where(truth, torch.tensor(2.0), torch.tensor(0.0))
    batch = {"visible": visible, "hidden": visible + 0.3, "mask": truth.float()}
    predicted = MetricDepths(visible + 0.01, visible + 0.3 - 0.02, predicted_mask, torch.tensor([2.0]))
    scores = depth_scores(predicted, batch)
    assert scores["visible_l1_mm"].item() == pytest.approx(10.0, abs=1e-3)  # float32 round-off at 2 m
    assert scores["hidden_l1_mm"].item() == pytest.approx(20.0, abs=1e-3)
    assert scores["silhouette_iou"].item() == pytest.approx(1 / 3)

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
    # The capsules are seen within 40 degrees of their front: one band, beside the whole set.
    assert set(report["bands"]) == {"all", "front"} and report["bands"]["front"]["samples"] == 2
    assert report["bands"]["all"]["visible_vs_flat"] > 0
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
    # A flat person: the flat guess is perfect, and neither map has relief.
    for name in ("flat_visible_l1_mm", "flat_hidden_l1_mm", "relief_mm", "true_relief_mm"):
        assert scores[name].item() == pytest.approx(0.0, abs=1e-3), name


def test_flat_guess_and_relief_on_a_tilted_plane():
    from mould.evaluation.predictions import MetricDepths
    from mould.evaluation.scores import depth_scores

    # Four columns at 2.0, 2.1, 2.2, 2.3 m: the lower median is 2.1, so the flat guess errs
    # (0.1 + 0 + 0.1 + 0.2) / 4 = 0.1 m; a prediction with half the slope has half the relief.
    truth = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    visible = (2.0 + 0.1 * torch.arange(4.0)).expand(1, 1, 4, 4).contiguous()
    batch = {"visible": visible, "hidden": visible + 0.2, "mask": truth.float()}
    half = 2.0 + 0.05 * torch.arange(4.0).expand(1, 1, 4, 4)
    scores = depth_scores(MetricDepths(half, half + 0.2, truth, torch.tensor([2.05])), batch)
    assert scores["flat_visible_l1_mm"].item() == pytest.approx(100.0, abs=1e-3)
    assert scores["true_relief_mm"].item() == pytest.approx(100.0, abs=1e-3)
    assert scores["relief_mm"].item() == pytest.approx(50.0, abs=1e-3)
    assert scores["flat_hidden_l1_mm"].item() == pytest.approx(100.0, abs=1e-3)


def test_bands_summarise_each_view_and_the_flat_fraction():
    from mould.evaluation.report import band_table, summarise_bands

    rows = [
        {"name": "a", "view_band": "front", "visible_l1_mm": 30.0, "flat_visible_l1_mm": 60.0},
        {"name": "b", "view_band": "front", "visible_l1_mm": 50.0, "flat_visible_l1_mm": 100.0},
        {"name": "c", "view_band": "back", "visible_l1_mm": 90.0, "flat_visible_l1_mm": 100.0},
    ]
    bands = summarise_bands(rows)
    assert list(bands) == ["all", "front", "back"]  # no side sample: no side row
    assert bands["front"]["samples"] == 2 and bands["front"]["means"]["visible_l1_mm"] == 40.0
    assert bands["front"]["visible_vs_flat"] == pytest.approx(0.5)
    assert bands["all"]["visible_vs_flat"] == pytest.approx(170 / 260)
    table = band_table(bands)
    assert "| front | 2 |" in table and "0.50" in table and len(table.splitlines()) == 5


def test_back_colour_errors_of_each_mode():
    from mould.camera import Camera
    from mould.container import Mould
    from mould.evaluation.scores import back_colour_errors

    n = 32
    v, u = np.mgrid[:n, :n]
    mask = (u - 15.5) ** 2 + (v - 15.5) ** 2 < 12**2
    front = np.zeros((n, n, 3), np.uint8)
    front[..., 0] = 200  # a red front
    back = np.zeros((n, n, 3), np.uint8)
    back[..., 2] = 200  # a blue back
    camera = Camera("perspective", n, 40.0, 15.5, 15.5, np.eye(4))
    depth = np.where(mask, 2.0, 0).astype(np.float32)
    mould = Mould(visible=depth, hidden=np.where(mask, 2.3, 0).astype(np.float32), mask=mask, camera=camera,
                  image=front, back_image=back)  # fmt: skip
    errors = back_colour_errors(mould, back, mask)
    assert set(errors) == {
        "back_predicted_l1",
        "back_smooth_l1",
        "back_mirror_l1",
        "back_nearest_l1",
        "back_none_l1",
    }
    # The seam blends every mode into the front within 4 pixels of the silhouette, so even a perfect
    # prediction errs there; the mirror paints the red front everywhere: 200 levels off in two channels.
    assert errors["back_predicted_l1"] < 0.5 * errors["back_mirror_l1"]
    assert errors["back_mirror_l1"] == pytest.approx(400 / 3, rel=1e-6)
    assert errors["back_smooth_l1"] == pytest.approx(400 / 3, rel=1e-6)  # smoothing a uniform red keeps it red
    assert "back_predicted_l1" not in back_colour_errors(mould.replace(back_image=None), back, mask)

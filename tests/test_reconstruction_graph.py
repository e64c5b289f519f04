"""The numpy interpreter of the converted MediaPipe graphs gives the outputs of Google's own runtime.

``tools/mediapipe_weights.py`` ran each .tflite model in LiteRT on fixed inputs (noise, and a grey image)
and kept its outputs beside them in ``tests/data/NAME_reference.npz`` (the landmark model's segmentation at
every 4th pixel, its heatmaps not at all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mould.reconstruction.graph import run_graph

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("case", ["noise", "grey"])
@pytest.mark.parametrize("model", ["pose_detection", "pose_landmark"])
def test_numpy_graph_matches_litert(model, case):
    # Measured: every output within 1e-5 of its largest value (float32 sums in another order), but the
    # segmentation's logits, within 2.6e-4 of theirs (0.38 on logits up to 1,449; 5e-4 as probabilities).
    reference = np.load(DATA / f"{model}_reference.npz")
    outputs = run_graph(model, reference[f"{case}_input"].astype(np.float32))
    compared = 0
    for index, output in enumerate(outputs):
        key = f"{case}_output{index}"
        if key not in reference:
            continue
        expected = reference[key]
        got = output[::4, ::4] if model == "pose_landmark" and index == 2 else output.reshape(expected.shape)
        np.testing.assert_allclose(got, expected, atol=1e-3 * max(np.abs(expected).max(), 1e-2), err_msg=key)
        compared += 1
    assert compared == {"pose_detection": 2, "pose_landmark": 4}[model]


def test_the_segmentation_matches_as_probabilities():
    reference = np.load(DATA / "pose_landmark_reference.npz")
    for case in ("noise", "grey"):
        logits = run_graph("pose_landmark", reference[f"{case}_input"].astype(np.float32))[2][::4, ::4]
        got, expected = (1 / (1 + np.exp(-np.clip(x, -80, 80))) for x in (logits, reference[f"{case}_output2"]))
        np.testing.assert_allclose(got, expected, atol=5e-3)

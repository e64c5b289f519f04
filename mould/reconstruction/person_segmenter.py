"""The person's outline from a network trained on real photographs: MediaPipe's pose landmark model.

Our network's silhouette, even snapped to the photo's edges and re-cut by GrabCut, loses what it never
learnt to see on real photos (a dark trouser leg on a dark street) and takes in what it should not (a tree
behind a head; ``docs/reconstruction.md``). MediaPipe's pose tracker (Bazarevsky et al., "BlazePose", 2020;
Google, Apache-2.0) runs, after the person detector (:mod:`mould.reconstruction.person_detector`), a landmark
model on a square around the detected body, turned upright: besides 39 landmarks it outputs a presence score
and a 256x256 segmentation of the person, learnt from real photographs. ``tools/mediapipe_weights.py``
converted ``pose_landmark_full.tflite`` into ``assets/pose_landmark.safetensors``;
:mod:`mould.reconstruction.graph` runs it with numpy (70-200 ms).

The square (MediaPipe's ``pose_detection_to_roi``): centred on the hips, of side 2.5 times the body's radius
(the circle's square enlarged by 1.25), turned so that the body's axis (hips to ``top``) points up. It is
sampled from the photo with black beyond its edges (from a reduced copy when it shrinks the photo more than
twice, so that it does not alias), in [0, 1].

Coordinates are photo pixels (x right, y down), the centre of the top-left pixel at (0, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mould.framing import CropWindow
from mould.reconstruction.graph import run_graph, sigmoid
from mould.reconstruction.person_detector import PersonDetection

INPUT_SIZE = 256
"""The landmark model's input side, in pixels; its segmentation has the same size."""

ROI_SCALE = 1.25
"""The square around the body's circle is enlarged by this factor (MediaPipe's ``RectTransformation``)."""

MIN_PRESENCE = 0.5
"""Below this presence score the landmark model does not see a person in its square (MediaPipe's default
``min_tracking_confidence``)."""


def roi_matrix(person: PersonDetection) -> np.ndarray:
    """(2, 3) affine map from the landmark model's input pixels (x', y') to the photo's (x, y).

    The input's centre is the hips; its "up" is the body's axis (from the hips to ``person.top``); its side
    is ``2 * ROI_SCALE * radius`` photo pixels.
    """
    dx, dy = person.top - person.hips
    theta = math.pi / 2 - math.atan2(-dy, dx)  # 0 for an upright body
    scale = 2 * ROI_SCALE * person.radius / INPUT_SIZE
    linear = scale * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    centre = (INPUT_SIZE - 1) / 2
    return np.hstack([linear, (person.hips - linear @ [centre, centre])[:, None]])


@dataclass(frozen=True)
class PersonSegmentation:
    """The landmark model's view of one person.

    Attributes:
        probability: (256, 256) float32 person probability on the model's input square.
        matrix: (2, 3) the square's pixels -> the photo's (:func:`roi_matrix`).
        presence: the model's confidence that a person is in the square, in [0, 1].
    """

    probability: np.ndarray
    matrix: np.ndarray
    presence: float

    def in_window(self, window: CropWindow) -> np.ndarray:
        """(N, N) float32 person probability on a crop's pixels (bilinear; 0 outside the square)."""
        from scipy.ndimage import map_coordinates

        u, v = window.pixels()
        uu, vv = np.meshgrid(u, v)  # (N, N) photo coordinates of the crop's pixel centres
        linear, offset = self.matrix[:, :2], self.matrix[:, 2]
        x, y = np.linalg.solve(linear, np.stack([uu.ravel() - offset[0], vv.ravel() - offset[1]]))
        sampled = map_coordinates(self.probability, [y, x], order=1, mode="constant", cval=0.0)
        return sampled.reshape(uu.shape).astype(np.float32)


def segment_person(rgb: np.ndarray, person: PersonDetection) -> PersonSegmentation:
    """Run the landmark model on the square around a detected person.

    Args:
        rgb: (H, W, 3) uint8 photo.
        person: the detection, in the photo's pixels.
    """
    import cv2

    matrix = roi_matrix(person)
    source, to_source = rgb, matrix
    shrink = int(2 ** math.floor(math.log2(max(1.0, 2 * ROI_SCALE * person.radius / INPUT_SIZE))))
    if shrink > 1:  # sample a reduced copy: a warp that shrinks by more than two aliases
        height, width = rgb.shape[:2]
        size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        source = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        # pixel centres: x_reduced = (x + 0.5) * size / width - 0.5
        factors = np.array([size[0] / width, size[1] / height])
        to_source = np.hstack([matrix[:, :2] * factors[:, None], ((matrix[:, 2] + 0.5) * factors - 0.5)[:, None]])
    square = cv2.warpAffine(
        source,
        to_source,
        (INPUT_SIZE, INPUT_SIZE),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    outputs = run_graph("pose_landmark", square.astype(np.float32) / 255.0)
    logits = outputs[2].reshape(INPUT_SIZE, INPUT_SIZE)
    probability = sigmoid(logits).astype(np.float32)
    return PersonSegmentation(probability, matrix, float(outputs[1].ravel()[0]))

"""A person detector trained on real photographs: MediaPipe's BlazePose detector, run in numpy.

Our network learnt people from synthetic renders only, and on real photographs it also sees people in
textures (a cat, a coffee cup, a hedge; ``docs/reconstruction.md``). MediaPipe's pose detector (Bazarevsky
et al., "BlazePose", 2020; Google, Apache-2.0, shipped inside the ``mediapipe`` wheels) was trained on real
photographs of people. It is a MobileNet-style single-shot detector: from a 224x224 image in [-1, 1] it
scores 2,254 anchors and regresses, for each, a box around the head and four keypoints: the hips' middle, a
point whose distance from it is the radius of a circle around the whole body, and the same two for the upper
body. ``tools/mediapipe_weights.py`` converted its graph and weights (float16, as stored) into
``assets/pose_detection.safetensors``; :mod:`mould.reconstruction.graph` runs that graph with numpy (50-70 ms),
so nothing is downloaded and no other runtime is needed; this module decodes and merges the detections as
MediaPipe does (``pose_detection_cpu.pbtxt``: sigmoid scores, anchors of strides 8/16/32, weighted
non-maximum suppression at IoU 0.3).

Coordinates are photo pixels (x right, y down), the centre of the top-left pixel at (0, 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mould.reconstruction.graph import run_graph

log = logging.getLogger(__name__)

INPUT_SIZE = 224
"""The detector's input side, in pixels."""

ANCHOR_STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = (2, 2, 6)
"""MediaPipe's SSD anchors for this model: five layers of strides 8, 16, 32, 32, 32 with two anchors a cell
each, the three layers of stride 32 merged into one grid (28² x 2 + 14² x 2 + 7² x 6 = 2,254)."""

SCORE_CLIP = 100.0
NMS_IOU = 0.3


@dataclass(frozen=True)
class PersonDetection:
    """One person found by the detector, in photo pixels.

    Attributes:
        score: the detector's confidence in [0, 1].
        hips: (2,) the middle of the hips (x, y).
        top: (2,) the point of the body's axis, from the hips towards the head, one radius of the circle around
            the whole body away: it gives the body's size and its tilt (MediaPipe's ROI for the landmarks).
        head_box: (4,) the box around the head: x0, y0, x1, y1.
    """

    score: float
    hips: np.ndarray
    top: np.ndarray
    head_box: np.ndarray

    @property
    def radius(self) -> float:
        """The radius of the circle around the whole body, centred on ``hips``."""
        return float(np.linalg.norm(self.top - self.hips))

    def moved(self, to_photo) -> PersonDetection:
        """The same detection with every point mapped by ``to_photo`` ((N, 2) -> (N, 2)): from a crop's pixels
        to the photo's, say."""
        points = np.stack([self.hips, self.top, self.head_box[:2], self.head_box[2:]])
        hips, top, corner0, corner1 = to_photo(points)
        return PersonDetection(self.score, hips, top, np.concatenate([corner0, corner1]))


# ---------------------------------------------------------------------------------------------------------
# The graph


def run_detector(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The detector's raw outputs.

    Args:
        image: (224, 224, 3) float32 in [-1, 1].

    Returns:
        regressions (2254, 12) float32 (box x, y, w, h, then four keypoints' x, y, in input pixels relative to
        the anchor) and logits (2254,) float32.
    """
    regressions, logits = run_graph("pose_detection", image)
    return regressions.reshape(-1, 12), logits.reshape(-1)


# ---------------------------------------------------------------------------------------------------------
# Decoding


@lru_cache(maxsize=1)
def anchor_centres() -> np.ndarray:
    """(2254, 2) anchor centres (x, y) in [0, 1], in the order of the detector's outputs."""
    centres = []
    for stride, per_cell in zip(ANCHOR_STRIDES, ANCHORS_PER_CELL):
        cells = INPUT_SIZE // stride
        y, x = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(x + 0.5) / cells, (y + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with many (N, 4), boxes as x0, y0, x1, y1."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def decode(regressions: np.ndarray, logits: np.ndarray, min_score: float) -> list[tuple[float, np.ndarray]]:
    """Detections above ``min_score``, merged by weighted non-maximum suppression.

    Returns:
        (score, values) pairs, best first; values (12,) in [0, 1] of the input: the head box x0, y0, x1, y1,
        then the four keypoints' x, y.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= min_score
    if not keep.any():
        return []
    raw, centres, scores = regressions[keep].astype(np.float64) / INPUT_SIZE, anchor_centres()[keep], scores[keep]
    cx, cy = raw[:, 0] + centres[:, 0], raw[:, 1] + centres[:, 1]
    boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], axis=1)
    keypoints = raw[:, 4:].reshape(-1, 4, 2) + centres[:, None, :]
    values = np.concatenate([boxes, keypoints.reshape(-1, 8)], axis=1)

    merged = []
    order = np.argsort(-scores, kind="stable")
    while order.size:
        overlap = _iou(boxes[order[0]], boxes[order])
        cluster, order = order[overlap > NMS_IOU], order[overlap <= NMS_IOU]
        weights = scores[cluster] / scores[cluster].sum()
        merged.append((float(scores[cluster[0]]), weights @ values[cluster]))
    return merged


def detect_people(rgb: np.ndarray, min_score: float = 0.5) -> list[PersonDetection]:
    """The people the detector finds in a photo, most confident first.

    Args:
        rgb: (H, W, 3) uint8 photo.
        min_score: the lowest confidence kept (MediaPipe's default, 0.5).
    """
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = INPUT_SIZE / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.BILINEAR), np.float32)
    left, top = (INPUT_SIZE - new_w) // 2, (INPUT_SIZE - new_h) // 2
    image = np.full((INPUT_SIZE, INPUT_SIZE, 3), -1.0, np.float32)  # letterboxed with black
    image[top : top + new_h, left : left + new_w] = resized / 127.5 - 1.0
    regressions, logits = run_detector(image)

    def to_photo(xy: np.ndarray) -> np.ndarray:
        """[0, 1] of the input -> photo pixels (pixel centres)."""
        return (xy * INPUT_SIZE - [left, top]) / [new_w / w, new_h / h] - 0.5

    people = []
    for score, values in decode(regressions, logits, min_score):
        keypoints = to_photo(values[4:].reshape(4, 2))
        head = to_photo(values[:4].reshape(2, 2)).reshape(4)
        people.append(PersonDetection(score=score, hips=keypoints[0], top=keypoints[1], head_box=head))
    log.debug("person detector: %d found (scores %s)", len(people), [round(p.score, 2) for p in people])
    return people

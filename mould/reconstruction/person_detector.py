"""A person detector trained on real photographs: MediaPipe's BlazePose detector, run in numpy.

Our network learnt people from synthetic renders only, and on real photographs it also sees people in
textures (a cat, a coffee cup, a hedge; ``docs/reconstruction.md``). MediaPipe's pose detector (Bazarevsky
et al., "BlazePose", 2020; Google, Apache-2.0, shipped inside the ``mediapipe`` wheels) was trained on real
photographs of people. It is a MobileNet-style single-shot detector: from a 224x224 image in [-1, 1] it
scores 2,254 anchors and regresses, for each, a box around the head and four keypoints: the hips' middle, a
point whose distance from it is the radius of a circle around the whole body, and the same two for the upper
body. ``tools/pose_detector_weights.py`` converted its graph and weights (float16, as stored) into
``assets/pose_detection.safetensors``; this module runs that graph with numpy (eight operators, ~0.1 s on one
core), so nothing is downloaded and no other runtime is needed, then decodes and merges the detections as
MediaPipe does (``pose_detection_cpu.pbtxt``: sigmoid scores, anchors of strides 8/16/32, weighted
non-maximum suppression at IoU 0.3).

Coordinates are photo pixels (x right, y down), the centre of the top-left pixel at (0, 0).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

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
        radius: the radius of the circle around the whole body, centred on ``hips``.
        head_box: (4,) the box around the head: x0, y0, x1, y1.
    """

    score: float
    hips: np.ndarray
    radius: float
    head_box: np.ndarray

    @property
    def body_box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 of the square around the body's circle."""
        (x, y), r = self.hips, self.radius
        return np.array([x - r, y - r, x + r, y + r])


# ---------------------------------------------------------------------------------------------------------
# The graph


@lru_cache(maxsize=1)
def _graph() -> tuple[dict, dict[str, np.ndarray]]:
    """The converted model: (graph spec, constants as float32 or int64), read once."""
    from safetensors.numpy import load

    data = resources.files("mould.reconstruction.assets").joinpath("pose_detection.safetensors").read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8 : 8 + header_size])["__metadata__"]  # safetensors' header: 8-byte size, JSON
    spec = json.loads(metadata["graph"])
    constants = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in load(data).items()}
    return spec, constants


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_for(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: str) -> np.ndarray:
    if padding == "valid":
        return x
    (top, bottom), (left, right) = (_same_padding(x.shape[i], kernel[i], stride[i]) for i in (0, 1))
    return np.pad(x, ((top, bottom), (left, right), (0, 0)))


def _activate(x: np.ndarray, activation: str | None) -> np.ndarray:
    if activation == "relu":
        return np.maximum(x, 0.0, out=x)
    if activation == "relu6":
        return np.clip(x, 0.0, 6.0, out=x)
    return x


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, op: dict) -> np.ndarray:
    """TFLite CONV_2D on one (H, W, C) image; weight (O, kh, kw, C)."""
    out_c, kh, kw, in_c = weight.shape
    sh, sw = op["stride"]
    x = _pad_for(x, (kh, kw), (sh, sw), op["padding"])
    if kh == kw == 1:
        patches = x[::sh, ::sw]
        ho, wo = patches.shape[:2]
        y = patches.reshape(-1, in_c) @ weight.reshape(out_c, in_c).T
    else:
        windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(0, 1))[::sh, ::sw]
        ho, wo = windows.shape[:2]  # windows: (ho, wo, C, kh, kw)
        patches = windows.transpose(0, 1, 3, 4, 2).reshape(ho * wo, kh * kw * in_c)
        y = patches @ weight.reshape(out_c, -1).T
    return _activate(y.reshape(ho, wo, out_c) + bias, op["activation"])


def _depthwise(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, op: dict) -> np.ndarray:
    """TFLite DEPTHWISE_CONV_2D (depth multiplier 1) on one (H, W, C) image; weight (1, kh, kw, C)."""
    _, kh, kw, _ = weight.shape
    sh, sw = op["stride"]
    x = _pad_for(x, (kh, kw), (sh, sw), op["padding"])
    ho, wo = (x.shape[0] - kh) // sh + 1, (x.shape[1] - kw) // sw + 1
    y = np.zeros((ho, wo, x.shape[2]), np.float32)
    for dy in range(kh):
        for dx in range(kw):
            y += x[dy : dy + sh * (ho - 1) + 1 : sh, dx : dx + sw * (wo - 1) + 1 : sw] * weight[0, dy, dx]
    return _activate(y + bias, op["activation"])


def _resize_bilinear(x: np.ndarray, size: np.ndarray, op: dict) -> np.ndarray:
    """TFLite RESIZE_BILINEAR of one (H, W, C) image to ``size`` (out_h, out_w)."""

    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i = np.arange(n_out, dtype=np.float64)
        if op["align_corners"] and n_out > 1:
            src = i * (n_in - 1) / (n_out - 1)
        elif op["half_pixel_centers"]:
            src = np.maximum((i + 0.5) * n_in / n_out - 0.5, 0.0)
        else:
            src = i * n_in / n_out
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), (src - lo).astype(np.float32)

    (y0, y1, fy), (x0, x1, fx) = axis(x.shape[0], int(size[0])), axis(x.shape[1], int(size[1]))
    rows = x[y0] * (1 - fy)[:, None, None] + x[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def _depth_to_space(x: np.ndarray, block: int) -> np.ndarray:
    h, w, c = x.shape
    out_c = c // (block * block)
    return x.reshape(h, w, block, block, out_c).transpose(0, 2, 1, 3, 4).reshape(h * block, w * block, out_c)


def run_graph(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The detector's raw outputs.

    Args:
        image: (224, 224, 3) float32 in [-1, 1].

    Returns:
        regressions (2254, 12) float32 (box x, y, w, h, then four keypoints' x, y, in input pixels relative to
        the anchor) and logits (2254,) float32.
    """
    spec, constants = _graph()
    values: dict[str, np.ndarray] = {spec["input"]: np.asarray(image, np.float32)}

    def get(name: str) -> np.ndarray:
        return values[name] if name in values else constants[name]

    for op in spec["ops"]:
        kind, inputs = op["op"], op["inputs"]
        if kind == "CONV_2D":
            y = _conv(get(inputs[0]), get(inputs[1]), get(inputs[2]), op)
        elif kind == "DEPTHWISE_CONV_2D":
            y = _depthwise(get(inputs[0]), get(inputs[1]), get(inputs[2]), op)
        elif kind == "ADD":
            y = _activate(get(inputs[0]) + get(inputs[1]), op["activation"])
        elif kind == "PAD":
            paddings = get(inputs[1]).astype(int)
            if np.any(paddings[0]):
                raise ValueError("PAD over the batch axis is not supported")
            y = np.pad(get(inputs[0]), [tuple(p) for p in paddings[1:]])
        elif kind == "RESHAPE":
            y = get(inputs[0]).reshape(tuple(int(n) for n in get(inputs[1])[1:]))
        elif kind == "DEPTH_TO_SPACE":
            y = _depth_to_space(get(inputs[0]), op["block"])
        elif kind == "RESIZE_BILINEAR":
            y = _resize_bilinear(get(inputs[0]), get(inputs[1]), op)
        elif kind == "CONCATENATION":
            axis = op["axis"] - 1 if op["axis"] > 0 else op["axis"]  # the batch axis is implicit here
            y = _activate(np.concatenate([get(n) for n in inputs], axis=axis), op["activation"])
        else:
            raise ValueError(f"operator {kind} is not supported")
        values[op["outputs"][0]] = y.astype(np.float32, copy=False)
    regressions, logits = (values[name] for name in spec["outputs"])
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
    regressions, logits = run_graph(image)

    def to_photo(xy: np.ndarray) -> np.ndarray:
        """[0, 1] of the input -> photo pixels (pixel centres)."""
        return (xy * INPUT_SIZE - [left, top]) / [new_w / w, new_h / h] - 0.5

    people = []
    for score, values in decode(regressions, logits, min_score):
        keypoints = to_photo(values[4:].reshape(4, 2))
        head = to_photo(values[:4].reshape(2, 2)).reshape(4)
        radius = float(np.linalg.norm(keypoints[1] - keypoints[0]))
        people.append(PersonDetection(score=score, hips=keypoints[0], radius=radius, head_box=head))
    log.debug("person detector: %d found (scores %s)", len(people), [round(p.score, 2) for p in people])
    return people

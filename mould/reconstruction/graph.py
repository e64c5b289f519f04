"""A numpy interpreter for the converted MediaPipe graphs (``assets/*.safetensors``).

``tools/mediapipe_weights.py`` converted each TFLite model once: its constants in float16 (as stored), its
operators in order as JSON in the file's metadata. This module runs them on one image with numpy: the ten
operator kinds they use (CONV_2D, DEPTHWISE_CONV_2D, ADD, PAD, RESHAPE, DEPTH_TO_SPACE, RESIZE_BILINEAR,
CONCATENATION, MAX_POOL_2D, LOGISTIC), with TFLite's semantics (SAME padding split as TFLite splits it,
fused ReLU/ReLU6), on (H, W, C) float32 arrays; the batch axis is implicit. Nothing is downloaded and no
other runtime is needed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np


@lru_cache(maxsize=2)
def load_graph(name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """A converted model of ``mould.reconstruction.assets``: (graph spec, constants as float32 or int64),
    read once.

    Args:
        name: the file's stem, e.g. ``pose_detection``.
    """
    from safetensors.numpy import load

    data = resources.files("mould.reconstruction.assets").joinpath(f"{name}.safetensors").read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8 : 8 + header_size])["__metadata__"]  # safetensors' header: 8-byte size, JSON
    spec = json.loads(metadata["graph"])
    constants = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in load(data).items()}
    return spec, constants


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_for(
    x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: str, fill: float = 0.0
) -> np.ndarray:
    """``x`` padded with ``fill`` as TFLite pads for a window of ``kernel`` (split as TFLite splits SAME)."""
    if padding == "valid":
        return x
    (top, bottom), (left, right) = (_same_padding(x.shape[i], kernel[i], stride[i]) for i in (0, 1))
    return np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=fill)


def _taps(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]):
    """For each offset (dy, dx) of a window over padded ``x``: (dy, dx, the (ho, wo, C) view of the pixels
    at that offset of every output's window)."""
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = (x.shape[0] - kh) // sh + 1, (x.shape[1] - kw) // sw + 1
    for dy in range(kh):
        for dx in range(kw):
            yield dy, dx, x[dy : dy + sh * (ho - 1) + 1 : sh, dx : dx + sw * (wo - 1) + 1 : sw]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, clipped where float32 ``exp`` would overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


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
    kernel, stride = weight.shape[1:3], op["stride"]
    y = None
    for dy, dx, tap in _taps(_pad_for(x, kernel, stride, op["padding"]), kernel, stride):
        term = tap * weight[0, dy, dx]
        y = term if y is None else y + term
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


def _max_pool(x: np.ndarray, op: dict) -> np.ndarray:
    """TFLite MAX_POOL_2D on one (H, W, C) image (SAME padding never wins the maximum)."""
    kernel, stride = op["filter"], op["stride"]
    y = None
    for _, _, tap in _taps(_pad_for(x, kernel, stride, op["padding"], fill=-np.inf), kernel, stride):
        y = tap.astype(np.float32) if y is None else np.maximum(y, tap, out=y)
    return _activate(y, op["activation"])


def run_graph(name: str, image: np.ndarray) -> list[np.ndarray]:
    """A converted model's raw outputs on one image.

    Args:
        name: the model (:func:`load_graph`).
        image: (H, W, 3) float32, at the model's input size and range.

    Returns:
        the model's outputs in its order, each without the batch axis.
    """
    spec, constants = load_graph(name)
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
        elif kind == "MAX_POOL_2D":
            y = _max_pool(get(inputs[0]), op)
        elif kind == "LOGISTIC":
            y = sigmoid(get(inputs[0]))
        else:
            raise ValueError(f"operator {kind} is not supported")
        values[op["outputs"][0]] = y.astype(np.float32, copy=False)
    return [values[name] for name in spec["outputs"]]

"""Pictures of predictions for people to look at: TensorBoard grids and the evaluation's case sheet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mould.preview import depth_colours

if TYPE_CHECKING:
    import torch

    from mould.evaluation.predictions import MetricDepths

PANELS = ("image", "true visible", "predicted visible", "true hidden", "predicted hidden", "masks")
"""Columns of a prediction row. ``masks``: true only in green, predicted only in red, both in yellow."""


def mask_colours(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(N, N, 3) uint8: true only green, predicted only red, both yellow, neither black."""
    out = np.zeros(truth.shape + (3,), np.uint8)
    out[..., 0] = np.where(predicted, 255, 0)
    out[..., 1] = np.where(truth, 255, 0)
    return out


def prediction_row(
    image: np.ndarray,
    true_visible: np.ndarray,
    true_hidden: np.ndarray,
    true_mask: np.ndarray,
    visible: np.ndarray,
    hidden: np.ndarray,
    mask: np.ndarray,
) -> list[np.ndarray]:
    """The :data:`PANELS` of one sample, each (N, N, 3) uint8; depths share the true depths' colour range.

    Args:
        image: (N, N, 3) uint8 crop. true_*: ground truth (N, N) metres and bool. visible, hidden: (N, N)
            predicted metres. mask: (N, N) bool predicted silhouette.
    """
    inside = np.concatenate([true_visible[true_mask], true_hidden[true_mask]])
    low, high = (float(inside.min()), float(inside.max())) if inside.size else (0.0, 1.0)
    return [
        image,
        depth_colours(true_visible, true_mask, low, high),
        depth_colours(visible, mask, low, high),
        depth_colours(true_hidden, true_mask, low, high),
        depth_colours(hidden, mask, low, high),
        mask_colours(true_mask, mask),
    ]


def batch_row(batch: dict[str, torch.Tensor], predicted: MetricDepths, i: int) -> list[np.ndarray]:
    """The panels (:func:`prediction_row`) of item ``i`` of a batch of records and its predictions."""

    def plane(value: torch.Tensor) -> np.ndarray:
        return value[i, 0].detach().float().cpu().numpy()

    image = batch["image"][i].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5
    truth = plane(batch["mask"]) > 0.5
    return prediction_row(
        image.astype(np.uint8),
        plane(batch["visible"]),
        plane(batch["hidden"]),
        truth,
        plane(predicted.visible),
        plane(predicted.hidden),
        plane(predicted.mask) > 0.5,
    )


def grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile rows of equal-size (N, N, 3) uint8 panels with a white gap: (R*N + gaps, C*N + gaps, 3) uint8."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    out = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            out[
                r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width
            ] = panel
    return out


def case_sheet(rows: list[list[np.ndarray]], titles: list[str], path: str | os.PathLike) -> Path:
    """A PNG with one titled row of :data:`PANELS` per case (the evaluation's best, median and worst)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mould.preview import save_figure

    figure, axes = plt.subplots(
        len(rows), len(PANELS), figsize=(2.2 * len(PANELS), 2.4 * len(rows)), squeeze=False
    )
    for r, (row, title) in enumerate(zip(rows, titles)):
        for c, (panel, name) in enumerate(zip(row, PANELS)):
            axis = axes[r][c]
            axis.imshow(panel)
            axis.set_axis_off()
            axis.set_title(name if c else f"{title}\n{name}", fontsize=8, loc="left" if not c else "center")
    figure.tight_layout()
    return save_figure(figure, path)

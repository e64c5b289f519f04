"""The validation pass of a training run: the scores of ``mould eval`` on a fixed subset of a held-out folder."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from mould.errors import MouldError
from mould.evaluation.pictures import batch_row, grid
from mould.evaluation.predictions import MetricDepths, predict_batch, to_device
from mould.evaluation.scores import mesh_scores

log = logging.getLogger(__name__)

PICTURE_ROWS = 4
"""Samples drawn in the validation picture."""
VAL_MESH_SAMPLES = 20_000
"""Surface points per mesh for validation mesh scores: a fifth of the evaluation's, ~0.2 mm noise on P2S."""


@dataclass(frozen=True)
class ValidationResult:
    """Mean scores (``val/...`` tags) and a picture ((H, W, 3) uint8) of the first samples."""

    scores: dict[str, float]
    picture: np.ndarray


class Validator:
    """Scores a model on a fixed, evenly spread subset of a held-out folder.

    Args:
        folder: a folder of samples (or any folder :func:`mould.datasets.mixing.open_dataset` reads).
        samples: how many samples to score.
        meshes: how many of them to mesh for the point-to-surface error (0: none).
        mesher: ``poisson`` or ``stitch`` (:func:`mould.recon.mesh.mould_to_mesh`).
        batch_size: samples per forward pass.
    """

    def __init__(
        self, folder: str | os.PathLike, samples: int, meshes: int, mesher: str = "poisson", batch_size: int = 8
    ) -> None:
        from mould.datasets.mixing import open_dataset

        self.dataset = open_dataset(folder, augment=None)
        count = min(samples, len(self.dataset))
        self.indices = np.unique(np.linspace(0, len(self.dataset) - 1, count).round().astype(int)).tolist()
        self.meshes = min(meshes, len(self.indices))
        self.mesher = mesher
        self.batch_size = batch_size
        self._truth_meshes: dict[int, object] = {}
        self._mesh_warning = False

    def run(
        self,
        model: torch.nn.Module,
        device: torch.device,
        autocast: contextlib.AbstractContextManager | None = None,
    ) -> ValidationResult:
        """Score ``model`` (left in training mode afterwards)."""
        from torch.utils.data import default_collate

        was_training = model.training
        model.eval()
        per_sample: dict[str, list[float]] = {}
        rows: list[list[np.ndarray]] = []
        try:
            for start in range(0, len(self.indices), self.batch_size):
                chunk = self.indices[start : start + self.batch_size]
                batch = to_device(default_collate([self.dataset[i] for i in chunk]), device)
                predicted, scores = predict_batch(model, batch, autocast)
                for name, values in scores.items():
                    per_sample.setdefault(name, []).extend(values.cpu().tolist())
                for j, index in enumerate(chunk):
                    if len(rows) < PICTURE_ROWS:
                        rows.append(batch_row(batch, predicted, j))
                    if start + j < self.meshes:
                        for name, value in self._mesh_scores(index, batch, predicted, j).items():
                            per_sample.setdefault(name, []).append(value)
        finally:
            model.train(was_training)
        means = {f"val/{name}": float(np.nanmean(values)) for name, values in per_sample.items() if values}
        return ValidationResult(means, grid(rows))

    def _mesh_scores(self, index: int, batch, predicted: MetricDepths, j: int) -> dict[str, float]:
        if self._mesh_warning:
            return {}
        try:
            return self._mesh_scores_of(index, batch, predicted, j)
        except ImportError as error:
            log.warning("meshing is not available (%s): validation skips the mesh scores (P2S)", error)
            self._mesh_warning = True
            return {}

    def _mesh_scores_of(self, index: int, batch, predicted: MetricDepths, j: int) -> dict[str, float]:
        from mould.datasets.records import record_to_mould
        from mould.recon.mesh import mould_to_mesh

        truth = record_to_mould({k: v.cpu() for k, v in batch.items()}, j)
        mould = predicted.mould(j, truth)
        if not mould.mask.any():
            return {"mesh_failure_rate": 1.0}
        try:
            if index not in self._truth_meshes:
                self._truth_meshes[index] = mould_to_mesh(truth, mesher=self.mesher)
            scores = mesh_scores(
                mould_to_mesh(mould, mesher=self.mesher), self._truth_meshes[index], samples=VAL_MESH_SAMPLES
            )
        except (ValueError, RuntimeError, MouldError) as error:  # a degenerate prediction early in training
            log.info("validation sample %d: meshing failed (%s)", index, str(error).splitlines()[0])
            return {"mesh_failure_rate": 1.0}
        return {**{k: v for k, v in scores.items() if k in ("p2s_mm", "chamfer_mm")}, "mesh_failure_rate": 0.0}

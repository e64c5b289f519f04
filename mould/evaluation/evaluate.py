"""``mould eval``: score a checkpoint on a folder of samples, per sample and on average.

Per sample (see :mod:`mould.evaluation.scores` for the definitions):

- depth L1 of the visible and hidden maps over the true silhouette (mm), beside the flat guess's on the
  same sample, the predicted and true relief, and silhouette IoU, with the prediction placed at the true
  reference depth (one photo does not fix the distance);
- the view band of synthetic samples (front, side, back: :mod:`mould.datasets.views`), from the yaw their
  JSON records, so every score is also reported per band;
- where the sample holds its back colour, the error of the back each texturing mode paints;
- mesh scores (Chamfer, P2S, S2P, normal consistency, F-score, volume IoU) between the mesh of the
  predicted mould (:func:`mould.recon.mesh.mould_to_mesh`) and the **true mesh**: the sample's source mesh
  when its JSON names one (key ``"mesh"``, a path relative to the folder, in the mould's world frame),
  otherwise the true mould meshed the same way (with its stored normals). The second excludes what no
  mould can hold (layers between the first and last hit) and the mesher's own error, so it measures the
  network; ``truth_mesh`` in the CSV says which was used.

Outputs in the report folder (:mod:`mould.evaluation.report`): ``per_sample.csv``, ``report.json``,
``cases.png`` (best, median and worst samples).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from mould.datasets.views import view_band
from mould.errors import InputError, MouldError
from mould.evaluation.config import EvalConfig
from mould.evaluation.pictures import batch_row
from mould.evaluation.predictions import predict_batch, to_device
from mould.evaluation.report import EvalReport, write_report
from mould.evaluation.scores import back_colour_errors, mesh_scores

log = logging.getLogger(__name__)


def evaluate(config: EvalConfig) -> EvalReport:
    """Score ``config.checkpoint`` on ``config.data`` and write the report (see the module docstring).

    Raises:
        InputError: a missing or bad checkpoint, a folder without samples, crops the model cannot take.
    """
    from mould.datasets.samples import sample_names
    from mould.files import check_output_folder
    from mould.models.checkpoint import load_checkpoint, resolve_checkpoint

    started = time.perf_counter()
    if not config.data.is_dir():
        raise InputError(f"{config.data}: not a folder")
    names = sample_names(config.data)
    if not names:
        raise InputError(f"{config.data}: no samples found")
    names = names[: config.limit] if config.limit else names
    check_output_folder(config.out)  # before the work: a report folder that cannot be written fails now
    from mould.models.inference import resolve_device

    device = resolve_device(config.device)
    checkpoint = resolve_checkpoint(config.checkpoint)
    model, model_config, metadata = load_checkpoint(checkpoint, device=device)
    model = model.to(memory_format=torch.channels_last).eval()
    rows, skipped = [], []
    for start in range(0, len(names), config.batch_size):
        chunk = names[start : start + config.batch_size]
        samples = _read(config.data, chunk, model_config.input_multiple, skipped)
        if samples:
            rows += _score(model, samples, config, device)
        log.info("scored %d of %d samples", min(start + config.batch_size, len(names)), len(names))
    if not rows:
        raise InputError(f"{config.data}: none of the {len(names)} samples could be read")
    report = write_report(
        config,
        rows,
        skipped,
        checkpoint=checkpoint,
        model_config=model_config,
        metadata=metadata,
        seconds=time.perf_counter() - started,
        draw=lambda chosen: _rows_for_picture(model, config, chosen, device),
    )
    return report


def _read(folder: Path, names: list[str], multiple: int, skipped: list) -> list[tuple[str, object, dict, dict]]:
    """``(name, mould, params, record)`` of each readable sample; unreadable ones go to ``skipped``."""
    from mould.datasets.records import mould_to_record
    from mould.datasets.samples import read_sample

    samples = []
    for name in names:
        try:
            mould, params = read_sample(folder, name)
            record = mould_to_record(mould)
        except (InputError, ValueError) as error:
            log.warning("skipping sample %s: %s", name, error)
            skipped.append((name, str(error)))
            continue
        if mould.resolution % multiple:
            raise InputError(
                f"{folder / name}: a {mould.resolution}² crop; this model needs a multiple of {multiple}"
            )
        samples.append((name, mould, params, record))
    return samples


def _score(model, samples: list, config: EvalConfig, device) -> list[dict]:
    from torch.utils.data import default_collate

    batch = to_device(default_collate([record for *_, record in samples]), device)
    predicted, scores = predict_batch(model, batch)
    rows = []
    for i, (name, truth, params, _) in enumerate(samples):
        yaw = params.get("camera", {}).get("yaw_deg") if isinstance(params.get("camera"), dict) else None
        row = {
            "name": name,
            "view_band": view_band(yaw) if isinstance(yaw, (int, float)) else "",
            **{key: float(value[i]) for key, value in scores.items()},
        }
        mould = predicted.mould(i, truth)
        if truth.back_image is not None:
            row.update(back_colour_errors(mould, truth.back_image, truth.mask))
        if config.meshes:
            row.update(_mesh_row(config, truth, params, mould))
        rows.append(row)
    return rows


def _mesh_row(config: EvalConfig, truth, params: dict, mould) -> dict:
    from mould.recon.mesh import mould_to_mesh

    source, true_mesh = _source_mesh(config.data, params)
    try:
        if not mould.mask.any():
            raise InputError("the predicted silhouette is empty")
        if true_mesh is None:
            true_mesh = mould_to_mesh(truth, mesher=config.mesher)
        predicted = mould_to_mesh(mould, mesher=config.mesher)
        return {**mesh_scores(predicted, true_mesh, samples=config.mesh_samples), "truth_mesh": source}
    except (MouldError, ValueError) as error:  # InputError is both; a degenerate prediction
        return {"truth_mesh": source, "mesh_error": str(error).splitlines()[0]}


def _source_mesh(folder: Path, params: dict) -> tuple[str, tuple | None]:
    """``("source", (vertices, faces))`` when the sample's JSON names a readable mesh, else
    ``("mould", None)``."""
    name = params.get("mesh")
    if isinstance(name, str) and name:
        from mould.files import path_inside
        from mould.meshfile import load_mesh

        try:
            return "source", load_mesh(path_inside(folder, name))
        except InputError as error:
            log.warning("sample source mesh %s unusable (%s): the true mould is meshed instead", name, error)
    return "mould", None


def _rows_for_picture(model, config: EvalConfig, names: list[str], device) -> list[list[np.ndarray]]:
    """Picture panels (:func:`mould.evaluation.pictures.prediction_row`) of the named samples, predicted again
    (cheaper than keeping every sample's panels)."""
    from torch.utils.data import default_collate

    samples = _read(config.data, names, 1, [])
    batch = to_device(default_collate([record for *_, record in samples]), device)
    predicted, _ = predict_batch(model, batch)
    return [batch_row(batch, predicted, i) for i in range(len(samples))]

"""Writing ``mould eval``'s report folder: ``per_sample.csv``, ``report.json`` and ``cases.png``.

``report.json`` keys: ``checkpoint``, ``checkpoint_metadata`` (step, training options, ...),
``model_config``, ``data``, ``samples`` (scored), ``skipped`` (``[name, reason]``), ``mesher``,
``truth_mesh`` (how many samples were compared with their source mesh and with their meshed true mould),
``mesh_failures``, ``means``, ``medians``, ``ranked_by`` and ``cases`` (the best, median and worst sample
names by that score), ``seconds``, ``files``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.evaluation.scores import MESH_SCORES
from mould.files import path_inside, write_atomic

SCORE_COLUMNS = ("visible_l1_mm", "hidden_l1_mm", "silhouette_iou", *MESH_SCORES)
COLUMNS = ("name", *SCORE_COLUMNS, "truth_mesh", "mesh_error")
LOWER_IS_BETTER = {"visible_l1_mm", "hidden_l1_mm", "chamfer_mm", "p2s_mm", "s2p_mm"}


def summarise(rows: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Means and medians of every score over the rows, ignoring NaN and missing values."""
    means, medians = {}, {}
    for column in SCORE_COLUMNS:
        values = np.array([row[column] for row in rows if column in row], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            means[column], medians[column] = float(values.mean()), float(np.median(values))
    return means, medians


def pick_cases(rows: list[dict]) -> tuple[str, dict[str, str]]:
    """The score to rank by (``p2s_mm`` when meshes were scored, else ``visible_l1_mm``) and the names of
    the best, median and worst samples by it (lower error is better)."""
    key = "p2s_mm" if any(np.isfinite(row.get("p2s_mm", np.nan)) for row in rows) else "visible_l1_mm"
    ranked = sorted(
        (row for row in rows if np.isfinite(row.get(key, np.nan))), key=lambda row: (row[key], row["name"])
    )
    if not ranked:
        return key, {}
    return key, {
        "best": ranked[0]["name"],
        "median": ranked[(len(ranked) - 1) // 2]["name"],
        "worst": ranked[-1]["name"],
    }


@dataclass(frozen=True)
class EvalReport:
    """The outcome of :func:`evaluate`.

    Attributes:
        rows: one dict per scored sample (``name``, the scores, ``truth_mesh``, ``mesh_error``).
        means, medians: per score over the samples (NaN ignored).
        skipped: ``(name, reason)`` of samples that could not be read.
        files: the files written.
    """

    rows: list[dict]
    means: dict[str, float]
    medians: dict[str, float]
    skipped: list[tuple[str, str]]
    files: list[Path]


def write_report(
    config,
    rows: list[dict],
    skipped: list[tuple[str, str]],
    *,
    checkpoint: Path,
    model_config,
    metadata: dict[str, str],
    seconds: float,
    draw: Callable[[list[str]], list[list[np.ndarray]]],
):
    """Write the three files into ``config.out``; ``draw(names)`` gives the picture rows of the cases.

    Returns:
        The :class:`EvalReport`.
    """
    from mould.evaluation.pictures import case_sheet

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    means, medians = summarise(rows)
    files = [_write_csv(path_inside(out, "per_sample.csv"), rows)]
    key, cases = pick_cases(rows)
    if cases:
        titles = [f"{label}: {name} ({key} {_value(rows, name, key):.4g})" for label, name in cases.items()]
        files.append(case_sheet(draw(list(cases.values())), titles, path_inside(out, "cases.png")))
    sources = [row.get("truth_mesh") for row in rows if "truth_mesh" in row]
    report = {
        "checkpoint": str(checkpoint),
        "checkpoint_metadata": {key: _json_or_text(value) for key, value in metadata.items()},
        "model_config": json.loads(model_config.to_json()),
        "data": str(config.data),
        "samples": len(rows),
        "skipped": [list(item) for item in skipped],
        "mesher": config.mesher if config.meshes else None,
        "truth_mesh": {"source": sources.count("source"), "mould": sources.count("mould")},
        "mesh_failures": sum(1 for row in rows if row.get("mesh_error")),
        "means": means,
        "medians": medians,
        "ranked_by": key,
        "cases": cases,
        "seconds": round(seconds, 1),
    }
    json_path = path_inside(out, "report.json")
    report["files"] = [str(path) for path in [*files, json_path]]
    text = json.dumps(report, indent=1, sort_keys=True)
    write_atomic(json_path, lambda handle: handle.write(text.encode()))
    files.append(json_path)
    return EvalReport(rows=rows, means=means, medians=medians, skipped=skipped, files=files)


def _json_or_text(value: str):
    """A metadata value holding a JSON object (the training options) as that object, else the text."""
    if value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _value(rows: list[dict], name: str, key: str) -> float:
    return next(row[key] for row in rows if row["name"] == name)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_atomic(path, lambda handle: handle.write(buffer.getvalue().encode()))
    return path

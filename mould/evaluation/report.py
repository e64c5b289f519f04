"""Writing ``mould eval``'s report folder: ``per_sample.csv``, ``report.json`` and ``cases.png``.

``report.json`` keys: ``checkpoint``, ``checkpoint_metadata`` (step, training options, ...),
``model_config``, ``data``, ``samples`` (scored), ``skipped`` (``[name, reason]``), ``mesher``,
``truth_mesh`` (how many samples were compared with their source mesh and with their meshed true mould),
``mesh_failures``, ``means``, ``medians``, ``bands`` (per view band, and ``all``: the sample count, the
means, and ``visible_vs_flat``, the mean visible L1 as a fraction of the flat guess's on the same samples),
``ranked_by`` and ``cases`` (the best, median and worst sample names by that score), ``seconds``, ``files``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mould.datasets.views import VIEW_BANDS
from mould.evaluation.scores import MESH_SCORES
from mould.files import path_inside, write_atomic
from mould.recon.texture import BACK_TEXTURES

DEPTH_COLUMNS = (
    "visible_l1_mm", "flat_visible_l1_mm", "hidden_l1_mm", "flat_hidden_l1_mm", "relief_mm", "true_relief_mm",
)  # fmt: skip
SCORE_COLUMNS = (
    *DEPTH_COLUMNS, "silhouette_iou", *MESH_SCORES, *(f"back_{mode}_l1" for mode in BACK_TEXTURES),
)  # fmt: skip
COLUMNS = ("name", "view_band", *SCORE_COLUMNS, "truth_mesh", "mesh_error")


def summarise(rows: list[dict]) -> tuple[dict[str, float], dict[str, float]]:
    """Means and medians of every score over the rows, ignoring NaN and missing values."""
    means, medians = {}, {}
    for column in SCORE_COLUMNS:
        values = np.array([row[column] for row in rows if column in row], dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            means[column], medians[column] = float(values.mean()), float(np.median(values))
    return means, medians


def summarise_bands(rows: list[dict]) -> dict[str, dict]:
    """Per view band (and ``"all"``): ``samples``, ``means`` and ``visible_vs_flat``, the mean visible L1 over
    the flat guess's mean on the same samples (progress measured as a fraction of the flat guess)."""
    groups = {"all": rows, **{band: [r for r in rows if r.get("view_band") == band] for band in VIEW_BANDS}}
    bands = {}
    for band, members in groups.items():
        if not members:
            continue
        means, _ = summarise(members)
        entry = {"samples": len(members), "means": means}
        if means.get("flat_visible_l1_mm"):
            entry["visible_vs_flat"] = means["visible_l1_mm"] / means["flat_visible_l1_mm"]
        bands[band] = entry
    return bands


def band_table(bands: dict[str, dict]) -> str:
    """A markdown table of :func:`summarise_bands`: one row per band."""
    columns = (
        ("samples", None), ("IoU", "silhouette_iou"), ("visible L1 (mm)", "visible_l1_mm"),
        ("flat (mm)", "flat_visible_l1_mm"), ("vs flat", None), ("hidden L1 (mm)", "hidden_l1_mm"),
        ("relief / true (mm)", None), ("P2S (mm)", "p2s_mm"), ("normal consistency", "normal_consistency"),
    )  # fmt: skip
    lines = [
        "| band | " + " | ".join(title for title, _ in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for band, entry in bands.items():
        means = entry["means"]
        cells = [str(entry["samples"])]
        for title, key in columns[1:]:
            if title == "vs flat":
                cells.append(f"{entry['visible_vs_flat']:.2f}" if "visible_vs_flat" in entry else "—")
            elif title.startswith("relief"):
                relief, truth = means.get("relief_mm"), means.get("true_relief_mm")
                cells.append(f"{relief:.0f} / {truth:.0f}" if relief is not None and truth is not None else "—")
            else:
                value = means.get(key)
                cells.append("—" if value is None else f"{value:.3f}" if key in _FRACTIONS else f"{value:.1f}")
        lines.append(f"| {band} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_FRACTIONS = {"silhouette_iou", "normal_consistency", "fscore", "volume_iou"}


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
        bands: :func:`summarise_bands`.
        skipped: ``(name, reason)`` of samples that could not be read.
        files: the files written.
    """

    rows: list[dict]
    means: dict[str, float]
    medians: dict[str, float]
    bands: dict[str, dict]
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
    bands = summarise_bands(rows)
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
        "bands": bands,
        "ranked_by": key,
        "cases": cases,
        "seconds": round(seconds, 1),
    }
    json_path = path_inside(out, "report.json")
    report["files"] = [str(path) for path in [*files, json_path]]
    text = json.dumps(report, indent=1, sort_keys=True)
    write_atomic(json_path, lambda handle: handle.write(text.encode()))
    files.append(json_path)
    return EvalReport(rows=rows, means=means, medians=medians, bands=bands, skipped=skipped, files=files)


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

"""What a folder of synthetic samples holds, in figures: ``mould data stats FOLDER...``.

Per folder: the person's share of the crop (mask area), the depth spread (visible depth range across the
person and the front-to-back thickness), the camera's view angles (yaw bands, elevation), and the mix of
pose families, garments and hairstyles, read from each sample's mould and JSON. Two folders side by side
show whether two generators make the same kind of data.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from mould.errors import InputError

GARMENT_KINDS = ("top", "jacket", "trousers", "shorts", "skirt", "dress", "shoes")
HAIR_STYLES = ("bald", "short", "curly", "bob", "long", "bun", "ponytail")


def folder_stats(folder: str | os.PathLike, limit: int | None = None) -> dict[str, float]:
    """Figures of one folder (see the module docstring), name -> value; shares are fractions of samples.

    Raises:
        InputError: the folder holds no sample.
    """
    from mould.datasets.samples import sample_names
    from mould.datasets.views import view_band

    from mould.container import Mould

    folder = Path(folder)
    names = sample_names(folder)[:limit] if folder.is_dir() else []
    if not names:
        raise InputError(f"{folder}: no samples found")
    areas, spreads, thickness, yaws, elevations = [], [], [], [], []
    bands, families, garments, hair, modelled = Counter(), Counter(), Counter(), Counter(), Counter()
    zoomed = low_key = 0
    for name in names:
        mould = Mould.load(folder / f"{name}.npz")
        params = json.loads((folder / f"{name}.json").read_text())
        mask = mould.mask
        areas.append(mask.mean())
        if mask.any():
            visible = mould.visible[mask]
            spreads.append(np.percentile(visible, 95) - np.percentile(visible, 5))
            thickness.append(float(np.mean(mould.hidden[mask] - visible)))
        camera = params.get("camera", {})
        yaw = float(camera.get("yaw_deg", 0.0))
        yaws.append(abs((yaw + 180.0) % 360.0 - 180.0))
        elevations.append(float(camera.get("elevation_deg", 0.0)))
        bands[view_band(yaw)] += 1
        zoomed += float(camera.get("box_scale", 1.0)) > 1.2
        low_key += float(params.get("background", {}).get("dim", 1.0)) < 1.0
        families[params.get("pose", {}).get("family", "?")] += 1
        garments.update({g["kind"] for g in params.get("outfit", [])})
        modelled.update({g["kind"] for g in params.get("outfit", []) if g.get("asset")})
        hair[params.get("hair", {}).get("style", "?")] += 1
        modelled["hair"] += bool(params.get("hair", {}).get("asset"))
    count = len(names)
    out = {
        "samples": float(count),
        "mask area, mean (share of the crop)": float(np.mean(areas)),
        "mask area, 10th-90th percentile": f"{np.percentile(areas, 10):.3f}-{np.percentile(areas, 90):.3f}",
        "visible depth spread, median (m)": float(np.median(spreads)),
        "thickness hidden - visible, mean (m)": float(np.mean(thickness)),
        "yaw magnitude, mean (degrees)": float(np.mean(yaws)),
        "elevation, mean +- sd (degrees)": f"{np.mean(elevations):.1f} +- {np.std(elevations):.1f}",
        "zoomed out (box scale > 1.2)": zoomed / count,
        "low-key scene (dark backdrop)": low_key / count,
    }
    out.update({f"view {band}": bands[band] / count for band in ("front", "side", "back")})
    out.update({f"pose {family}": families[family] / count for family in sorted(families)})
    out.update({f"wears {kind}": garments[kind] / count for kind in GARMENT_KINDS})
    labels = {
        "top": "a MakeHuman suit",
        "shoes": "MakeHuman shoes",
        "hat": "a MakeHuman hat",
        "hair": "MakeHuman hair",
    }
    out.update({f"wears {label}": modelled[kind] / count for kind, label in labels.items()})
    out.update({f"hair {style}": hair[style] / count for style in HAIR_STYLES})
    return out


def stats_table(folders: list[Path], limit: int | None = None) -> str:
    """A Markdown table: one row per figure, one column per folder."""
    columns = [folder_stats(folder, limit) for folder in folders]
    keys = list(dict.fromkeys(k for column in columns for k in column))
    lines = ["| figure | " + " | ".join(str(f) for f in folders) + " |", "| --- |" + " --- |" * len(folders)]
    for key in keys:
        cells = []
        for column in columns:
            value = column.get(key, 0.0)
            cells.append(
                value if isinstance(value, str) else f"{value:.0f}" if key == "samples" else f"{value:.3f}"
            )
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

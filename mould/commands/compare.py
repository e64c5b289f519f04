"""``mould compare MESH_A MESH_B``: surface and volume errors between two meshes (metres in, mm out)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from mould.checks import check_option
from mould.errors import InputError
from mould.limits import LIMITS
from mould.recon.metrics import MetricConfig


@dataclass(frozen=True)
class CompareConfig:
    """Options of ``mould compare``."""

    mesh_a: Path
    """First mesh (e.g. the reconstruction), metres."""
    mesh_b: Path
    """Second mesh (e.g. the ground truth), metres, same frame."""
    samples: int = MetricConfig.samples
    """Surface points sampled on each mesh."""
    seed: int = MetricConfig.seed
    """Sampling seed: the same seed gives the same figures."""
    tau_mm: float = MetricConfig.tau * 1000
    """F-score threshold in millimetres."""
    as_json: bool = False
    """Print JSON instead of a table."""

    def __post_init__(self) -> None:
        check_option("--samples", self.samples, 100, LIMITS.metric_samples)
        check_option("--seed", self.seed, 0, 2**63 - 1)
        check_option("--tau", self.tau_mm, 0, 1e6)
        if not self.tau_mm > 0:
            raise InputError(f"--tau: expected > 0 mm, got {self.tau_mm}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="Chamfer, point-to-surface, normal consistency, F-score and IoU between two meshes",
        description="Compare two meshes in the same frame (metres): Chamfer-L1/L2 and point-to-surface "
        "distances both ways in mm, normal consistency, F-score at --tau, and volumetric IoU (watertight "
        "meshes only). Sampling is uniform over the area, --samples points per mesh, seeded by --seed.",
    )
    p.add_argument("mesh_a", type=Path, help="first mesh (PLY, OBJ, STL, OFF, GLB), e.g. the reconstruction")
    p.add_argument("mesh_b", type=Path, help="second mesh, e.g. the ground truth")
    p.add_argument(
        "--samples", type=int, default=CompareConfig.samples, help="surface points per mesh (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=CompareConfig.seed, help="sampling seed (default %(default)s)")
    p.add_argument(
        "--tau", type=float, default=CompareConfig.tau_mm, help="F-score threshold in mm (default %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(run=run)


ROWS = (
    ("chamfer_l1_mm", "Chamfer-L1 (mean symmetric surface error)", "mm", "{:.3f}"),
    ("chamfer_l2_mm2", "Chamfer-L2 (mean squared)", "mm²", "{:.3f}"),
    ("p2s_a_to_b_mm", "P2S A -> B", "mm", "{:.3f}"),
    ("p2s_b_to_a_mm", "P2S B -> A", "mm", "{:.3f}"),
    ("normal_consistency", "normal consistency", "", "{:.4f}"),
    ("precision", "precision at tau", "", "{:.4f}"),
    ("recall", "recall at tau", "", "{:.4f}"),
    ("fscore", "F-score at tau", "", "{:.4f}"),
    ("tau_mm", "tau", "mm", "{:.2f}"),
    ("iou", "volumetric IoU", "", "{:.4f}"),
)


def run(args: argparse.Namespace) -> int:
    config = CompareConfig(
        mesh_a=args.mesh_a,
        mesh_b=args.mesh_b,
        samples=args.samples,
        seed=args.seed,
        tau_mm=args.tau,
        as_json=args.json,
    )
    from mould.meshfile import load_mesh
    from mould.recon.metrics import MetricConfig, compare_meshes

    mesh_a, mesh_b = load_mesh(config.mesh_a), load_mesh(config.mesh_b)
    metrics = compare_meshes(
        mesh_a, mesh_b, MetricConfig(samples=config.samples, seed=config.seed, tau=config.tau_mm / 1000)
    )
    if config.as_json:
        clean = {key: (None if value != value else value) for key, value in metrics.items()}  # NaN -> null
        print(json.dumps({"a": str(config.mesh_a), "b": str(config.mesh_b), **clean}, indent=2))
        return 0
    print(f"A = {config.mesh_a}\nB = {config.mesh_b}\n")
    print("| metric | value | unit |\n| --- | --- | --- |")
    for key, label, unit, form in ROWS:
        value = metrics[key]
        text = "n/a (a mesh is not watertight)" if value != value else form.format(value)
        print(f"| {label} | {text} | {unit} |")
    return 0

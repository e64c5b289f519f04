"""``mould eval --checkpoint PATH --data DIR``: score a trained network on held-out samples.

The options map onto :class:`mould.evaluation.evaluate.EvalConfig`; the work is
:func:`mould.evaluation.evaluate.evaluate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mould.devices import DEVICES
    from mould.evaluation.config import EvalConfig
    from mould.recon.mesh import MESHERS

    p = subparsers.add_parser(
        "eval",
        help="score a checkpoint on a folder of samples (depth L1, silhouette IoU, mesh distances)",
        description="Score a checkpoint on a folder of samples: per sample the visible and hidden depth L1 "
        "over the true silhouette (mm, the prediction placed at the true reference depth), the silhouette "
        "IoU, and Chamfer, P2S, normal consistency and F-score between the mesh of the prediction and the true "
        "mesh (the source mesh named in the sample's JSON, else the true mould meshed the same way). Writes "
        "per_sample.csv, report.json (means, medians) and cases.png (best, median, worst) into --out.",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="a .safetensors checkpoint or a run folder (its latest checkpoint); default: the shipped model",
    )
    p.add_argument("--data", required=True, type=Path, metavar="DIR", help="folder of samples to score")
    p.add_argument("--out", type=Path, metavar="REPORT_DIR", help="report folder (default ./eval-<data folder>)")
    p.add_argument(
        "--mesher",
        choices=MESHERS,
        default=EvalConfig.mesher,
        help="mesher of the mesh scores (default %(default)s)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="score only the first N samples (by name)")
    p.add_argument("--no-meshes", dest="meshes", action="store_false", help="depth and silhouette scores only")
    p.add_argument(
        "--mesh-samples",
        type=int,
        default=EvalConfig.mesh_samples,
        help="surface points per mesh for the mesh scores (default %(default)s; fewer is faster)",
    )
    p.add_argument(
        "--device", choices=DEVICES, default=EvalConfig.device, help="where the network runs (default %(default)s)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mould.evaluation.config import EvalConfig

    config = EvalConfig(
        checkpoint=args.checkpoint,
        data=args.data,
        out=args.out or Path(f"eval-{args.data.resolve().name}"),
        mesher=args.mesher,
        limit=args.limit,
        meshes=args.meshes,
        device=args.device,
        mesh_samples=args.mesh_samples,
    )
    from mould.evaluation.evaluate import evaluate
    from mould.evaluation.report import band_table

    report = evaluate(config)
    print(f"{len(report.rows)} samples scored ({len(report.skipped)} skipped); means per view band:")
    print(band_table(report.bands))
    backs = {k.split("_")[1]: v for k, v in report.means.items() if k.startswith("back_")}
    if backs:
        print("back colour error (8-bit levels): " + ", ".join(f"{k} {v:.1f}" for k, v in backs.items()))
    print(f"wrote {', '.join(str(path) for path in report.files)}")
    return 0

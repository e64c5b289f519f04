"""``mould reconstruct INPUT… -o OUTDIR``: photos of people -> textured, watertight meshes."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mould.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mould.devices import DEVICES
    from mould.models.runtime import RUNTIMES
    from mould.recon.mesh import MESHERS
    from mould.recon.texture import BACK_TEXTURES
    from mould.reconstruction.config import MESH_FORMATS, OUTLINES, CropConfig, ReconstructConfig

    p = subparsers.add_parser(
        "reconstruct",
        help="photo(s) of a person -> textured, watertight mesh(es) with a preview",
        description="Reconstruct each person photo as a textured, watertight mesh. The person is framed by "
        "the image's alpha channel when it is a real mask, else by --mask, else by the network's own "
        "silhouette; with several people, the largest is reconstructed. Metric scale assumes a 50 mm-"
        "equivalent lens at 2.8 m (see --focal-factor, --distance). Meshes are in metres, +Y up, facing +Z.",
    )
    p.add_argument(
        "inputs", type=Path, nargs="+", metavar="INPUT", help="image files (PNG, JPEG, WebP, BMP) or folders"
    )
    p.add_argument("-o", "--outdir", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument(
        "--format",
        default=",".join(ReconstructConfig.formats),
        help=f"comma-separated mesh formats among {', '.join(MESH_FORMATS)} (default %(default)s)",
    )
    p.add_argument(
        "--mesher",
        choices=MESHERS,
        default=ReconstructConfig.mesher,
        help="stitch (the two maps stitched at the silhouette, ~0.03 s) or poisson (smoother, ~0.8 s); "
        "default %(default)s",
    )
    p.add_argument(
        "--back-texture",
        choices=BACK_TEXTURES,
        default=ReconstructConfig.back_texture,
        help="colouring of the unseen back: the network's predicted back colour, smoothed (predicted; smooth "
        "for a model without one), the front colour smoothed (smooth) or carried through the body as it is "
        "(mirror), the nearest visible colour (nearest) or grey (none); default %(default)s",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="model weights: a .safetensors file or a training run folder (default: the shipped model)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=ReconstructConfig.device,
        help="where the network runs (default %(default)s)",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default=ReconstructConfig.runtime,
        help="what runs the network: onnxruntime (onnx, CPU only; the checkpoint is exported on first use and "
        "cached), torch, or auto: onnx when onnxruntime is installed and the network runs on the CPU; "
        "default %(default)s",
    )
    p.add_argument("--mask", type=Path, default=None, help="person mask image for a single INPUT (white = person)")
    p.add_argument(
        "--outline",
        choices=OUTLINES,
        default=ReconstructConfig.outline,
        help="where the person's outline comes from without a mask: segmenter, MediaPipe's pose landmark model "
        "(packaged, trained on real photographs) on the person the detector confirmed, or network, our "
        "network's silhouette snapped and re-cut, which segmenter falls back to where it sees nobody "
        "(default %(default)s)",
    )
    p.add_argument(
        "--snap-radius",
        type=int,
        default=ReconstructConfig.snap_radius,
        help="radius in crop pixels of the guided filter that snaps the network's silhouette to the photo's "
        "colour edges; 0 keeps the network's outline (default %(default)s; for --outline network)",
    )
    p.add_argument(
        "--grabcut-iterations",
        type=int,
        default=ReconstructConfig.grabcut_iterations,
        help="rounds of GrabCut that re-cut the snapped silhouette from the photo's colours; 0 keeps the "
        "snapped outline (default %(default)s; for --outline network)",
    )
    p.add_argument(
        "--min-person-score",
        type=float,
        default=CropConfig.min_person_score,
        help="confidence at which the packaged person detector (MediaPipe's BlazePose) must see the person "
        "the network frames, or the photo is refused as holding nobody; 0 turns the check off "
        "(default %(default)s; unused with a mask)",
    )
    p.add_argument("--save-mould", action="store_true", help="also write the predicted mould (.npz)")
    p.add_argument("--no-preview", dest="preview", action="store_false", help="skip the preview PNG")
    p.add_argument(
        "--focal-factor",
        type=float,
        default=ReconstructConfig.focal_factor,
        help="assumed focal length / the photo's long side (default %(default).3f: a 50 mm-equivalent lens)",
    )
    p.add_argument(
        "--distance",
        type=float,
        default=ReconstructConfig.distance,
        help="assumed camera distance in metres (default %(default)s)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mould.files import output_folder, write_atomic
    from mould.reconstruction.config import CropConfig, ReconstructConfig
    from mould.reconstruction.pipeline import REPORT_NAME, Reconstructor, collect_inputs, run_batch

    config = ReconstructConfig(
        outdir=args.outdir,
        formats=tuple(f.strip().lower() for f in args.format.split(",") if f.strip()),
        mesher=args.mesher,
        back_texture=args.back_texture,
        save_mould=args.save_mould,
        preview=args.preview,
        focal_factor=args.focal_factor,
        distance=args.distance,
        device=args.device,
        runtime=args.runtime,
        outline=args.outline,
        snap_radius=args.snap_radius,
        grabcut_iterations=args.grabcut_iterations,
        crop=CropConfig(min_person_score=args.min_person_score),
    )
    inputs = collect_inputs(args.inputs)
    if args.mask is not None and len(inputs) > 1:
        raise InputError("--mask: a mask file goes with a single input image")
    outdir = output_folder(config.outdir)
    if (outdir / REPORT_NAME).is_dir():
        raise InputError(f"{outdir / REPORT_NAME}: is a folder; the run's report goes there")
    config = ReconstructConfig(**{**config.__dict__, "outdir": outdir})

    from mould.models.runtime import load_predictor

    clock = time.perf_counter()
    network, checkpoint, runtime = load_predictor(args.checkpoint, config.device, config.runtime, config.crop.size)
    load_seconds = time.perf_counter() - clock
    where = "onnxruntime on cpu" if runtime == "onnx" else f"torch on {network.device}"
    print(f"model: {checkpoint} ({network.config.name}) loaded, {where}, in {load_seconds:.2f} s", file=sys.stderr)

    def show(report) -> None:
        stages = " ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
        if report.status == "ok":
            mesh_file = next((o for o in report.outputs if o.endswith(tuple("." + f for f in config.formats))), "")
            print(
                f"{report.input}: ok, {report.vertices} vertices, {report.faces} faces, "
                f"height {report.height_m:.2f} m -> {mesh_file} [{stages}]"
            )
        else:
            print(f"mould reconstruct: error: {report.error}", file=sys.stderr)

    clock = time.perf_counter()
    reports = run_batch(Reconstructor(network, config), inputs, args.mask, on_done=show)
    total = time.perf_counter() - clock
    failed = [r for r in reports if r.status != "ok"]
    summary = {
        "checkpoint": str(checkpoint),
        "runtime": where,
        "model_load_s": load_seconds,
        "total_s": total,
        "images": len(reports),
        "ok": len(reports) - len(failed),
        "failed": len(failed),
        "results": [r.__dict__ for r in reports],
    }
    text = json.dumps(summary, indent=1)
    write_atomic(outdir / REPORT_NAME, lambda handle: handle.write(text.encode()))
    print(
        f"{len(reports) - len(failed)} of {len(reports)} images reconstructed in {total:.1f} s "
        f"({len(reports) / max(total, 1e-9):.2f} images/s); report: {outdir / REPORT_NAME}"
    )
    return 1 if failed else 0

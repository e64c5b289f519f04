"""``mould bench WHAT``: benchmarks that print figures (no assertions; docs/benchmarks.md keeps the tables).

Each sub-bench's options are the fields of its config in :mod:`mould.benchmarks` (same names, the defaults
read from there); ``run`` builds the config and calls the bench, which hands back the lines to print. The
bench modules import their heavy libraries (torch, open3d, anny, matplotlib) inside the benches, so
importing them here keeps ``mould --help`` instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path

from mould.benchmarks.encode import BenchEncodeConfig, bench_encode
from mould.benchmarks.mesh import BenchMeshConfig, bench_mesh
from mould.benchmarks.model import BenchModelConfig, bench_model
from mould.benchmarks.photos import BenchPhotosConfig, bench_photos
from mould.benchmarks.reconstruct import BenchReconstructConfig, bench_reconstruct
from mould.benchmarks.representation import BenchRepresentationConfig
from mould.benchmarks.representation_report import bench_representation
from mould.benchmarks.synth import BenchSynthConfig, bench_synth
from mould.recon.mesh import MESHERS

_echo = functools.partial(print, flush=True)  # a bench's lines appear as they are measured, also in a pipe


def config_from_args(args: argparse.Namespace):
    """The parsed sub-bench's config: each field from the option of the same name (``nargs`` lists as tuples)."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(args.config_class)}
    return args.config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _run(args: argparse.Namespace) -> int:
    args.measure(config_from_args(args), _echo)
    return 0


def _words(values: tuple) -> str:
    """A tuple default as it is typed on the command line: ``7 8 9``."""
    return " ".join(str(value) for value in values)


def _add_encode(subparsers: argparse._SubParsersAction) -> None:
    default = BenchEncodeConfig
    p = subparsers.add_parser(
        "encode",
        help="time mesh -> mould and mould -> points",
        description="Time encode (ray casting, with normals) and decode (points, gradient normals, side band) "
        "on an anny body (or --mesh) and print the median of --repeats runs.",
    )
    p.add_argument("--mesh", type=Path, default=default.mesh, help="mesh file to time (default: an anny body)")
    p.add_argument(
        "--resolutions",
        type=int,
        nargs="+",
        default=default.resolutions,
        help=f"crop sides (default {_words(default.resolutions)})",
    )
    p.add_argument(
        "--repeats", type=int, default=default.repeats, help="timed runs per figure (default %(default)s)"
    )
    p.set_defaults(run=_run, measure=bench_encode, config_class=BenchEncodeConfig)


def _add_model(subparsers: argparse._SubParsersAction) -> None:
    default = BenchModelConfig
    p = subparsers.add_parser(
        "model",
        help="time the network's forward pass at 256², with parameters and FLOPs",
        description="Time one forward pass (batch 1, eval mode, torch.inference_mode) of each model size in "
        "both memory formats and print the median of --repeats runs, the parameters and the FLOPs.",
    )
    p.add_argument(
        "--configs", nargs="+", default=default.configs, help=f"model sizes (default {_words(default.configs)})"
    )
    p.add_argument("--resolution", type=int, default=default.resolution, help="crop side (default %(default)s)")
    p.add_argument(
        "--repeats", type=int, default=default.repeats, help="timed runs per figure (default %(default)s)"
    )
    p.add_argument("--threads", type=int, default=default.threads, help="torch CPU threads (default %(default)s)")
    p.add_argument(
        "--train-batch",
        type=int,
        default=default.train_batch,
        help="also time a training step at this batch size, 0 for none (default %(default)s)",
    )
    p.set_defaults(run=_run, measure=bench_model, config_class=BenchModelConfig)


def _add_mesh(subparsers: argparse._SubParsersAction) -> None:
    default = BenchMeshConfig
    p = subparsers.add_parser(
        "mesh",
        help="time and accuracy of stitching and Poisson on anny moulds",
        description="Encode anny bodies as moulds (with exact normals), mesh each with direct stitching and "
        "screened Poisson (pymeshlab at several depths, open3d; exact and depth-gradient normals), and print "
        "the median wall and CPU time, triangle count, watertightness and P2S against the body in both "
        "directions.",
    )
    p.add_argument("--count", type=int, default=default.count, help="anny bodies (default %(default)s)")
    p.add_argument("--seed", type=int, default=default.seed, help="seed of the bodies (default %(default)s)")
    p.add_argument(
        "--resolution", type=int, default=default.resolution, help="mould side in pixels (default %(default)s)"
    )
    p.add_argument(
        "--depths",
        type=int,
        nargs="+",
        default=default.depths,
        help=f"Poisson depths (default {_words(default.depths)})",
    )
    p.add_argument(
        "--repeats", type=int, default=default.repeats, help="timed runs per figure (default %(default)s)"
    )
    p.add_argument(
        "--samples", type=int, default=default.samples, help="surface samples for P2S (default %(default)s)"
    )
    p.add_argument("--json", type=Path, default=default.json, help="also write the figures as JSON")
    p.set_defaults(run=_run, measure=bench_mesh, config_class=BenchMeshConfig)


def _add_representation(subparsers: argparse._SubParsersAction) -> None:
    default = BenchRepresentationConfig
    p = subparsers.add_parser(
        "representation",
        help="mould vs voxel grid: surface error per dimensionality (the talk's table)",
        description="Encode meshes as moulds of N x N pixels (2N² numbers, meshed back with --mesher) and as "
        "voxel occupancy grids of V³ cells (marching cubes), and report the mean symmetric surface error in mm "
        "per dimensionality, beside the figures of the Moulding Humans talk. Writes a markdown table, JSON "
        "and a log-log plot to --outdir. Needs PyMCubes: pip install 'mould[bench]'.",
    )
    p.add_argument("-o", "--outdir", type=Path, default=default.outdir, help="output folder (default %(default)s)")
    p.add_argument(
        "--meshes", type=Path, default=default.meshes, help="folder of closed meshes (default: anny bodies)"
    )
    p.add_argument(
        "--count", type=int, default=default.count, help="number of bodies or meshes (default %(default)s)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=default.seed,
        help="seed of the bodies' phenotypes and poses (default %(default)s)",
    )
    p.add_argument("--mesher", choices=MESHERS, default=default.mesher, help="mould mesher (default %(default)s)")
    p.add_argument(
        "--dimensionalities",
        type=int,
        nargs="+",
        default=default.dimensionalities,
        help=f"dimensionalities (default: the talk's, {_words(default.dimensionalities)})",
    )
    p.add_argument(
        "--samples", type=int, default=default.samples, help="surface samples per mesh (default %(default)s)"
    )
    p.add_argument("--no-plot", dest="plot", action="store_false", default=default.plot, help="skip the PNG")
    p.set_defaults(run=_run, measure=bench_representation, config_class=BenchRepresentationConfig)


def _add_reconstruct(subparsers: argparse._SubParsersAction) -> None:
    default = BenchReconstructConfig
    p = subparsers.add_parser(
        "reconstruct",
        help="time photo -> textured mesh end to end, per stage and for a batch",
        description="Run the reconstruct pipeline (load, frame, predict, mesh, texture; export to OBJ "
        "timed apart) on a batch of photos with each mesher. Prints the median time per stage, the end-to-end "
        "median per photo and the batch throughput; the model load is reported separately.",
    )
    p.add_argument(
        "--images", type=Path, default=default.images, help="folder of photos (default: synthesise --count)"
    )
    p.add_argument("--count", type=int, default=default.count, help="photos in the batch (default %(default)s)")
    p.add_argument(
        "--meshers", nargs="+", default=default.meshers, help=f"meshers (default {_words(default.meshers)})"
    )
    p.add_argument(
        "--checkpoint", type=Path, default=default.checkpoint, help="weights (default: the shipped model)"
    )
    p.set_defaults(run=_run, measure=bench_reconstruct, config_class=BenchReconstructConfig)


def _add_photos(subparsers: argparse._SubParsersAction) -> None:
    default = BenchPhotosConfig
    p = subparsers.add_parser(
        "photos",
        help="reconstruct a folder of real photos without masks; IoU against the masks beside them",
        description="Reconstruct every photo of FOLDER as mould reconstruct does, without a mask (the network "
        "frames the person), and report per photo the framing passes, the silhouette IoU of the final crop "
        "against the mask beside the photo (NAME_mask.png: white = person; NAME_segmentation.png: a "
        "TensorFlow.js palette, index 0 = person), the share of the mask inside the crop, the mesh height "
        "and the time. Writes the previews, a contact sheet (photos.png) and the table (photos.json, "
        "photos.md) to --outdir.",
    )
    p.add_argument("folder", type=Path, metavar="FOLDER", help="folder of photos (and their masks)")
    p.add_argument("-o", "--outdir", type=Path, default=default.outdir, help="output folder (default %(default)s)")
    p.add_argument(
        "--checkpoint", type=Path, default=default.checkpoint, help="weights (default: the shipped model)"
    )
    p.set_defaults(run=_run, measure=bench_photos, config_class=BenchPhotosConfig)


def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    default = BenchSynthConfig
    p = subparsers.add_parser(
        "synth",
        help="samples per second of the synthetic generator (in memory, no files)",
        description="Make synthetic samples in memory for --seconds and print the rate: on the CPU, --workers "
        "processes make whole samples; with --device cuda, --workers processes draw and the GPU builds and "
        "renders batches of --batch (what `mould train --data synth` does on a GPU). `mould synth` adds "
        "writing the files.",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default=default.device, help="default %(default)s")
    p.add_argument("--seconds", type=float, default=default.seconds, help="timed window (default %(default)s)")
    p.add_argument(
        "--batch", type=int, default=default.batch, help="samples at once (default 1 on cpu, 128 on cuda)"
    )
    p.add_argument("--workers", type=int, default=default.workers, help="processes (default %(default)s)")
    p.add_argument("--resolution", type=int, default=default.resolution, help="crop side (default %(default)s)")
    p.add_argument("--json", type=Path, default=default.json, help="also write the figures to this JSON file")
    p.set_defaults(run=_run, measure=bench_synth, config_class=BenchSynthConfig)


BENCHES = {
    "encode": _add_encode,
    "model": _add_model,
    "mesh": _add_mesh,
    "representation": _add_representation,
    "reconstruct": _add_reconstruct,
    "photos": _add_photos,
    "synth": _add_synth,
}
"""Sub-bench name -> the function that registers its parser; the order is the order of ``mould bench --help``."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmarks that print timings and errors",
        description="Run a benchmark and print its figures.",
    )
    inner = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for add in BENCHES.values():
        add(inner)

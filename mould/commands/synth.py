"""``mould synth OUTDIR --count N``: generate synthetic clothed humans with their ground-truth moulds.

``mould synth bank OUT.safetensors`` writes the body bank (what the generator needs of anny) for a machine
without anny.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from mould.checks import check_option
from mould.errors import InputError


@dataclass(frozen=True)
class SynthCommandConfig:
    """Options of ``mould synth``."""

    outdir: Path
    """Output folder; samples NNNNNNN.png/.npz/.json and a manifest .synth.json go there."""
    count: int
    """How many samples the folder should hold (existing complete ones are kept)."""
    seed: int = 0
    """Dataset seed: sample i depends on (seed, i) only."""
    resolution: int = 256
    """Crop side in pixels."""
    workers: int = 1
    """Worker processes, one core each."""
    backgrounds: Path | None = None
    """Folder of PNG/JPEG images to crop backgrounds from (procedural backgrounds otherwise)."""
    force: bool = False
    """Accept a folder holding other files or another run's samples."""
    clutter: float = 0.5
    """Probability of cluttered procedural backgrounds (see ``SynthConfig.clutter``)."""
    zoom_out: float = 0.2
    """Probability of zoomed-out crops (see ``SynthConfig.zoom_out``)."""
    views: str = "photo"
    """Camera yaw distribution (see ``SynthConfig.views``)."""
    wardrobe: float = 0.4
    """Share of MakeHuman suits, shoes and hair (see ``SynthConfig.wardrobe``)."""
    low_key: float = 0.1
    """Share of low-key scenes: dark backdrop, mostly dark clothes (see ``SynthConfig.low_key``)."""
    device: str = "cpu"
    """Where samples are built and rendered: ``cpu`` or ``cuda`` (batches on the GPU)."""
    batch: int | None = None
    """Samples rendered at once (default: 1 on the CPU, each worker making whole samples; 128 on a GPU)."""

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise InputError(f"--device: expected cpu or cuda, got {self.device}")
        if self.batch is not None:
            check_option("--batch", self.batch, 1, 65_536)
        check_option("--count", self.count, 1, 100_000_000)
        if not 16 <= self.resolution <= 2048:
            raise InputError(f"--resolution: expected 16 to 2048, got {self.resolution}")
        if not 1 <= self.workers <= 256:
            raise InputError(f"--workers: expected 1 to 256, got {self.workers}")
        check_option("--seed", self.seed, 0, 2**63 - 1)
        for name in ("clutter", "zoom_out", "wardrobe", "low_key"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(
                    f"--{name.replace('_', '-')}: expected a probability in [0, 1], got {getattr(self, name)}"
                )
        if self.backgrounds is not None and not self.backgrounds.is_dir():
            raise InputError(f"--backgrounds: {self.backgrounds} is not a folder")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic clothed people with their moulds (training data)",
        description="Generate training samples: anny bodies of random shape in sampled poses, dressed in "
        "procedural and MakeHuman garments and hair (geometry, not paint), ray-cast from a random perspective "
        "camera. "
        "Each sample is NAME.png (the crop), NAME.npz (its mould with ground-truth normals) and NAME.json "
        "(every parameter, seed included). The same --seed gives the same data; an interrupted run resumes "
        "where it stopped.",
    )
    p.add_argument("outdir", type=Path, help="output folder (created); or `bank` to write the body bank")
    p.add_argument("bank_file", nargs="?", type=Path, metavar="OUT.safetensors", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help="number of samples the folder should hold (required)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--resolution", type=int, default=256, help="crop side in pixels (default 256)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help=f"worker processes (default 1; this machine has {os.cpu_count()} cores)",
    )
    p.add_argument("--backgrounds", type=Path, help="folder of PNG/JPEG images to crop backgrounds from")
    p.add_argument(
        "--clutter",
        type=float,
        default=0.5,
        help="probability that a procedural background is cluttered with finely textured objects (default 0.5)",
    )
    p.add_argument(
        "--zoom-out",
        type=float,
        default=0.2,
        help="probability of a crop zoomed out 1.3-2.6x, as a whole photo looks to the framing (default 0.2)",
    )
    p.add_argument(
        "--views",
        choices=("photo", "uniform"),
        default="photo",
        help="camera yaw distribution: photo (70%% front, 22%% side, 8%% back, as photographs of people; the "
        "default) or uniform over 360 degrees",
    )
    p.add_argument(
        "--wardrobe",
        type=float,
        default=0.4,
        help="share of people in MakeHuman's modelled suits (collars, lapels, pockets), of shoes swapped for its "
        "modelled shoes and of hair drawn as its modelled haircuts; 0: procedural garments and hair only "
        "(default 0.4)",
    )
    p.add_argument(
        "--low-key",
        type=float,
        default=0.1,
        help="share of low-key scenes: the background dimmed to 4-30%% of its brightness and the clothes mostly "
        "dark (trousers nine times in ten), as studio portraits on black; 0: none (default 0.1)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu: each worker makes whole samples; cuda: workers draw, the GPU builds and renders batches "
        "(default cpu)",
    )
    p.add_argument("--batch", type=int, help="samples rendered at once (default 1 on cpu, 128 on cuda)")
    p.add_argument(
        "--force", action="store_true", help="accept a folder holding other files or another run's samples"
    )
    p.epilog = (
        "mould synth bank OUT.safetensors writes the body bank (anny's topology, skinning, rig and phenotype "
        "blend basis, ~27 MB) for a machine without anny: point MOULD_BODY_BANK at it there."
    )
    p.set_defaults(run=run)


def _write_bank(path: Path) -> int:
    from mould.datasets.bank import export_bank

    if path.suffix != ".safetensors":
        raise InputError(f"{path}: the body bank must be a .safetensors file")
    written = export_bank(path)
    print(f"mould synth bank: wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.bank_file is not None:
        if args.outdir != Path("bank"):
            raise InputError(
                f"unexpected argument {args.bank_file}: did you mean `mould synth bank {args.bank_file}`?"
            )
        return _write_bank(args.bank_file)
    if args.count is None:
        raise InputError("--count: required (how many samples the folder should hold)")
    config = SynthCommandConfig(
        outdir=args.outdir,
        count=args.count,
        seed=args.seed,
        resolution=args.resolution,
        workers=args.workers,
        backgrounds=args.backgrounds,
        force=args.force,
        clutter=args.clutter,
        zoom_out=args.zoom_out,
        views=args.views,
        wardrobe=args.wardrobe,
        low_key=args.low_key,
        device=args.device,
        batch=args.batch,
    )
    from mould.datasets.backdrops import background_images
    from mould.datasets.synth_folder import synthesize
    from mould.datasets.synthetic import SynthConfig

    images = background_images(config.backgrounds) if config.backgrounds is not None else ()
    summary = synthesize(
        config.outdir,
        config.count,
        config.seed,
        SynthConfig(
            resolution=config.resolution,
            backgrounds=images,
            clutter=config.clutter,
            zoom_out=config.zoom_out,
            views=config.views,
            wardrobe=config.wardrobe,
            low_key=config.low_key,
        ),
        workers=config.workers,
        device=config.device,
        batch=config.batch or (128 if config.device == "cuda" else 1),
        force=config.force,
        progress=not args.quiet,
    )
    print(
        f"mould synth: {summary.written} written, {summary.skipped} already there, {len(summary.failed)} failed "
        f"in {summary.seconds:.1f} s: {summary.samples_per_second:.2f} samples/s with {config.workers} "
        f"worker{'s' if config.workers > 1 else ''}, {summary.samples_per_cpu_second:.2f} samples per CPU-second "
        f"-> {config.outdir}"
    )
    for failure in summary.failed[:10]:
        print(f"  failed {failure}")
    return 1 if summary.failed else 0

"""``mould model-info [--config NAME] [--json]``: parameter count and FLOPs of the network sizes."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from mould.checks import check_option
from mould.errors import InputError
from mould.tolerances import DEFAULT_TOLERANCES


@dataclass(frozen=True)
class ModelInfoConfig:
    """Options of ``mould model-info``."""

    config: str | None = None
    """A model size (``paper``, ``small``, ``tiny``); None describes them all."""
    resolution: int = 256
    """Crop side at which FLOPs are counted."""
    as_json: bool = False
    """Print one JSON object instead of a table."""

    def __post_init__(self) -> None:
        check_option("--resolution", self.resolution, 1, DEFAULT_TOLERANCES.max_resolution)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "model-info",
        help="parameter count and FLOPs of the network sizes",
        description="Print the trainable parameters and the FLOPs of one forward pass (batch 1; convolutions "
        "and matrix products, 2 FLOPs per multiply-add, counted by torch.utils.flop_counter) of each network "
        "size, or of --config.",
    )
    p.add_argument("--config", default=None, help="one model size: paper, medium, small or tiny (default: all)")
    p.add_argument(
        "--resolution",
        type=int,
        default=ModelInfoConfig.resolution,
        help="crop side for the FLOP count (default %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def model_info(name: str, resolution: int) -> dict:
    """Parameters, FLOPs and architecture of the model size ``name`` at ``resolution``."""
    import dataclasses

    from mould.models import CONFIGS, build_model, count_flops, count_parameters

    config = CONFIGS[name]
    if resolution % config.input_multiple:
        raise InputError(f"--resolution: expected a multiple of {config.input_multiple}, got {resolution}")
    model = build_model(config)
    return {
        "config": name,
        "parameters": count_parameters(model),
        "flops": count_flops(model, resolution),
        "resolution": resolution,
        "architecture": dataclasses.asdict(config),
    }


def run(args: argparse.Namespace) -> int:
    config = ModelInfoConfig(config=args.config, resolution=args.resolution, as_json=args.json)
    from mould.models import CONFIGS

    if config.config is not None and config.config not in CONFIGS:
        raise InputError(f"--config: unknown model size {config.config!r}; known: {', '.join(CONFIGS)}")
    names = [config.config] if config.config else list(CONFIGS)
    infos = [model_info(name, config.resolution) for name in names]
    if config.as_json:
        print(json.dumps(infos[0] if config.config else {info["config"]: info for info in infos}, indent=2))
        return 0
    print(f"| config | stacks | features | parameters | GFLOPs at {config.resolution}² |")
    print("| --- | --- | --- | --- | --- |")
    for info in infos:
        arch = info["architecture"]
        print(
            f"| {info['config']} | {arch['stacks']} | {arch['features']} | {info['parameters'] / 1e6:.2f} M | "
            f"{info['flops'] / 1e9:.2f} |"
        )
    return 0

"""``mould export-onnx -o MODEL.onnx [--checkpoint PATH]``: a checkpoint (default: the shipped model) as an ONNX
graph."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from mould.errors import InputError


@dataclass(frozen=True)
class ExportOnnxConfig:
    """Options of ``mould export-onnx``."""

    output: Path
    """The ``.onnx`` file to write (its folder must exist)."""
    checkpoint: Path | None = None
    """The checkpoint to export: a ``.safetensors`` file, a run folder, or None (the shipped model)."""
    resolution: int = 256
    """Crop side the graph takes (the batch axis stays dynamic)."""
    opset: int = 17
    """ONNX opset version."""

    def __post_init__(self) -> None:
        if self.output.suffix.lower() != ".onnx":
            raise InputError(f"{self.output}: the output must be a .onnx file")
        if not self.output.parent.is_dir():
            raise InputError(f"{self.output}: the folder {self.output.parent} does not exist")
        if self.resolution < 1:
            raise InputError(f"--resolution: expected a positive crop side, got {self.resolution}")
        if not 11 <= self.opset <= 20:
            raise InputError(f"--opset: expected 11 to 20, got {self.opset}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-onnx",
        help="checkpoint (.safetensors) -> ONNX graph of the final stack",
        description="Export a network checkpoint to ONNX: input 'image' (batch, 3, N, N) float RGB in [0, 1]; "
        "outputs 'visible', 'hidden' (relative depth: metres = reference + depth_scale x value) and "
        "'mask_logits', each (batch, 1, N, N). The model config is stored in the ONNX metadata.",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a .safetensors checkpoint or a training run folder (default: the shipped model)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.onnx)")
    p.add_argument("--resolution", type=int, default=256, help="crop side N of the graph (default 256)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = ExportOnnxConfig(
        checkpoint=args.checkpoint, output=args.output, resolution=args.resolution, opset=args.opset
    )
    from mould.models.checkpoint import load_checkpoint, resolve_checkpoint
    from mould.models.onnx import export_onnx

    model, model_config, _ = load_checkpoint(resolve_checkpoint(config.checkpoint))
    if config.resolution % model_config.input_multiple:
        raise InputError(
            f"--resolution: expected a multiple of {model_config.input_multiple}, got {config.resolution}"
        )
    export_onnx(model, config.output, resolution=config.resolution, opset=config.opset)
    print(f"wrote {config.output} (config {model_config.name!r}, {config.resolution}² input)")
    return 0

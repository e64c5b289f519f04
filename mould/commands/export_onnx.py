"""``mould export-onnx -o MODEL.onnx [--checkpoint PATH]``: a checkpoint (default: the shipped model) as an ONNX
graph."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from mould.checks import check_option
from mould.errors import InputError
from mould.files import check_output_file
from mould.tolerances import DEFAULT_TOLERANCES


@dataclass(frozen=True)
class ExportOnnxConfig:
    """Options of ``mould export-onnx``."""

    output: Path
    """The ``.onnx`` file to write (its folder must exist)."""
    checkpoint: Path | None = None
    """The checkpoint to export: a ``.safetensors`` file, a run folder, or None (the shipped model)."""
    resolution: int = 256
    """Crop side the graph takes (the batch axis stays dynamic)."""
    opset: int | None = None
    """ONNX opset version; None: the exporter's default (``mould.models.onnx.DEFAULT_OPSET``)."""

    def __post_init__(self) -> None:
        if self.output.suffix.lower() != ".onnx":
            raise InputError(f"{self.output}: the output must be a .onnx file")
        if not self.output.parent.is_dir():
            raise InputError(f"{self.output}: the folder {self.output.parent} does not exist")
        check_output_file(self.output)
        check_option("--resolution", self.resolution, 1, DEFAULT_TOLERANCES.max_resolution)
        if self.opset is not None and not 11 <= self.opset <= 20:
            raise InputError(f"--opset: expected 11 to 20, got {self.opset}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export-onnx",
        help="checkpoint (.safetensors) -> ONNX graph of the final stack",
        description="Export a network checkpoint to ONNX: input 'image' (batch, 3, N, N) float RGB in [0, 1]; "
        "outputs 'visible', 'hidden' (relative depth: metres = reference + depth_scale x value) and "
        "'mask_logits', each (batch, 1, N, N), and 'back' (batch, 3, N, N) for a model with a back-colour head. "
        "The model config is stored in the ONNX metadata.",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a .safetensors checkpoint or a training run folder (default: the shipped model)",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.onnx)")
    p.add_argument(
        "--resolution",
        type=int,
        default=ExportOnnxConfig.resolution,
        help="crop side N of the graph (default %(default)s)",
    )
    p.add_argument(
        "--opset",
        type=int,
        help="ONNX opset version, 11 to 20 (default: the exporter's, read by every onnxruntime since 1.14)",
    )
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
    opset = {} if config.opset is None else {"opset": config.opset}
    export_onnx(model, config.output, resolution=config.resolution, **opset)
    print(f"wrote {config.output} (config {model_config.name!r}, {config.resolution}² input)")
    return 0

"""Export a network to ONNX, for runtimes without torch (onnxruntime, browsers, mobile).

The exported graph is the **final stack** only, in eval mode:

- input ``image``: (batch, 3, N, N) float32 RGB in [0, 1] (N fixed at export, 256 by default);
- outputs ``visible``, ``hidden`` (relative depth, see :mod:`mould.models.depth`) and ``mask_logits``,
  each (batch, 1, N, N) float32, and for a model with ``back_colour`` ``back``, (batch, 3, N, N) RGB in
  [0, 1]; the batch axis is dynamic.

The model config (JSON, including ``depth_scale``) is stored in the ONNX metadata under ``model_config``.
Export needs the ``onnx`` package and running the graph ``onnxruntime``: ``pip install 'mould[onnx]'``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
from mould.models.hourglass import MouldNet
from torch import nn

from mould.errors import MouldError
from mould.files import write_atomic

DEFAULT_OPSET = 17
"""ONNX opset: 17 is read by every onnxruntime since 1.14 and holds all the network's operators."""


class FinalStack(nn.Module):
    """Wraps a :class:`MouldNet` to return the final stack's maps as a tuple, in the order of
    ``model.config.output_channels``."""

    def __init__(self, model: MouldNet) -> None:
        super().__init__()
        self.model = model
        self.keys = tuple(model.config.output_channels)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        final = self.model(image)[-1]
        return tuple(final[key] for key in self.keys)


def export_onnx(
    model: MouldNet, path: str | os.PathLike, *, resolution: int = 256, opset: int = DEFAULT_OPSET
) -> Path:
    """Write ``model`` (its final stack, in eval mode) to ``path`` as ONNX, atomically.

    Args:
        model: the network; its train/eval mode is restored afterwards.
        path: the ``.onnx`` file to write.
        resolution: the crop side N the graph takes (a multiple of ``model.config.input_multiple``).
        opset: the ONNX opset version.

    Returns:
        The path written.

    Raises:
        MouldError: the ``onnx`` package is not installed.
    """
    try:
        import onnx
    except ImportError:
        raise MouldError("ONNX export needs the onnx package: pip install 'mould[onnx]'") from None
    multiple = model.config.input_multiple
    if resolution < multiple or resolution % multiple:
        raise ValueError(f"resolution: expected a multiple of {multiple}, got {resolution}")
    wrapper = FinalStack(model)
    was_training = model.training
    # The legacy exporter restores the *wrapper's* mode recursively after export, so both must be eval.
    wrapper.eval()
    example = torch.zeros(1, 3, resolution, resolution, device=next(model.parameters()).device)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter: the test checks the outputs
            # dynamo=False: the TorchScript exporter needs no onnxscript and handles this static graph.
            torch.onnx.export(
                wrapper,
                (example,),
                buffer,
                dynamo=False,
                input_names=["image"],
                output_names=list(wrapper.keys),
                dynamic_axes={name: {0: "batch"} for name in ("image", *wrapper.keys)},
                opset_version=opset,
            )
    finally:
        model.train(was_training)
    graph = onnx.load_from_string(buffer.getvalue())
    entry = graph.metadata_props.add()
    entry.key, entry.value = "model_config", model.config.to_json()
    onnx.checker.check_model(graph)
    payload = graph.SerializeToString()
    path = Path(path)
    write_atomic(path, lambda handle: handle.write(payload))
    return path

"""Convert MediaPipe's BlazePose models into the files ``mould.reconstruction.graph`` runs.

MediaPipe (Google, Apache-2.0) ships, inside the ``mediapipe`` wheels up to 0.10.14, the two stages of its
pose tracker, both trained on real photographs of people:

- ``mediapipe/modules/pose_detection/pose_detection.tflite``, the person detector: a MobileNet-style network
  that, from a 224x224 image, scores 2,254 anchors and regresses for each a box and four keypoints (the hips'
  middle and a point whose distance from it is the radius of a circle around the whole body, the same two
  for the upper body);
- ``mediapipe/modules/pose_landmark/pose_landmark_full.tflite``, the landmark model run on the detector's
  rotated square around the body: 39 landmarks, a presence score and a 256x256 person segmentation.

Their weights are stored sparse and in float16 behind DENSIFY and DEQUANTIZE operators that a plain
interpreter would have to decode; this tool runs each model once in LiteRT with every tensor kept, reads
each constant as the operator that uses it sees it (dense), and writes:

- the constants, in float16 (as the model stores them: lossless), to ``NAME.safetensors`` whose metadata
  holds the graph as JSON: the operators in order with their options and tensor names;
- ``NAME_reference.npz`` in ``--references``: LiteRT's raw outputs on fixed inputs, for the cross-check tests.

It needs a scratch environment with ``mediapipe==0.10.14``, ``tflite`` and ``ai-edge-litert`` (the package
itself does not)::

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.14 tflite ai-edge-litert
    /tmp/mp/bin/python tools/mediapipe_weights.py mould/reconstruction/assets --references tests/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SKIPPED = {"DEQUANTIZE", "DENSIFY"}
"""Operators that only decode stored constants: their outputs are written dense instead."""


def _options(op, name: str, tflite) -> dict:
    """The options of one operator that the numpy interpreter needs."""
    table = op.BuiltinOptions()
    activation = {0: None, 1: "relu", 3: "relu6"}
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = cls()
        o.Init(table.Bytes, table.Pos)
        if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
            raise ValueError(f"{name}: dilation is not supported")
        if name == "DEPTHWISE_CONV_2D" and o.DepthMultiplier() not in (0, 1):
            raise ValueError("DEPTHWISE_CONV_2D: depth multiplier other than 1")
        return {
            "stride": [o.StrideH(), o.StrideW()],
            "padding": "same" if o.Padding() == 0 else "valid",
            "activation": activation[o.FusedActivationFunction()],
        }
    if name in ("ADD", "CONCATENATION"):
        o = tflite.AddOptions() if name == "ADD" else tflite.ConcatenationOptions()
        o.Init(table.Bytes, table.Pos)
        out = {"activation": activation[o.FusedActivationFunction()]}
        if name == "CONCATENATION":
            out["axis"] = o.Axis()
        return out
    if name == "DEPTH_TO_SPACE":
        o = tflite.DepthToSpaceOptions()
        o.Init(table.Bytes, table.Pos)
        return {"block": o.BlockSize()}
    if name == "RESIZE_BILINEAR":
        o = tflite.ResizeBilinearOptions()
        o.Init(table.Bytes, table.Pos)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if name == "MAX_POOL_2D":
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {
            "stride": [o.StrideH(), o.StrideW()],
            "filter": [o.FilterHeight(), o.FilterWidth()],
            "padding": "same" if o.Padding() == 0 else "valid",
            "activation": activation[o.FusedActivationFunction()],
        }
    if name in ("PAD", "RESHAPE", "LOGISTIC"):
        return {}
    raise ValueError(f"operator {name} is not supported")


MODELS = {
    # name: (path in the wheel, reference inputs (H, W, 3) in the model's range, outputs kept for the check)
    "pose_detection": ("modules/pose_detection/pose_detection.tflite", (224, -1.0, 1.0), None),
    # the segmentation is kept at every 4th pixel, the 64x64x39 heatmaps not at all: the file stays small
    "pose_landmark": (
        "modules/pose_landmark/pose_landmark_full.tflite",
        (256, 0.0, 1.0),
        {0: (), 1: (), 2: (slice(None, None, 4), slice(None, None, 4)), 4: ()},
    ),
}


def convert(model_path: Path, name: str, outdir: Path, references: Path) -> None:
    """Write ``outdir/NAME.safetensors`` and ``references/NAME_reference.npz`` for one model of :data:`MODELS`."""
    import tflite
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from safetensors.numpy import save_file

    model = tflite.Model.GetRootAsModel(model_path.read_bytes(), 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}

    interpreter = Interpreter(
        model_path=str(model_path),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    rng = np.random.default_rng(0)
    interpreter.set_tensor(inp["index"], rng.uniform(-1, 1, inp["shape"]).astype(np.float32))
    interpreter.invoke()

    produced = {int(graph.Inputs(i)) for i in range(graph.InputsLength())}
    ops, constants = [], {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if kind in SKIPPED:
            continue
        inputs = [int(t) for t in op.InputsAsNumpy()]
        outputs = [int(t) for t in op.OutputsAsNumpy()]
        for t in inputs:
            if t >= 0 and t not in produced and str(t) not in constants:
                value = np.asarray(interpreter.get_tensor(t))
                is_index = value.dtype.kind == "i"
                constants[str(t)] = value.astype(np.int64 if is_index else np.float16)
        ops.append(
            {
                "op": kind,
                "inputs": [str(t) for t in inputs],
                "outputs": [str(t) for t in outputs],
                **_options(op, kind, tflite),
            }
        )
        produced.update(outputs)
    wheel_path, (size, low, high), kept = MODELS[name]
    spec = {
        "source": f"mediapipe 0.10.14, mediapipe/{wheel_path} (Apache-2.0)",
        "input": str(int(graph.Inputs(0))),
        "outputs": [str(int(graph.Outputs(i))) for i in range(graph.OutputsLength())],
        "ops": ops,
    }
    outdir.mkdir(parents=True, exist_ok=True)
    save_file(constants, str(outdir / f"{name}.safetensors"), metadata={"graph": json.dumps(spec)})

    # LiteRT's raw outputs on a few inputs, for the numpy interpreter's cross-check.
    if name == "pose_detection":  # as first written (2026-12-02): per-pixel noise
        noise = rng.uniform(low, high, (size, size, 3))
    else:  # noise in 8-pixel blocks: the file compresses
        noise = np.kron(rng.uniform(low, high, (size // 8, size // 8, 3)), np.ones((8, 8, 1)))
    inputs = {"noise": noise.astype(np.float16), "grey": np.full((size, size, 3), (low + high) / 2, np.float16)}
    reference = {}
    for key, x in inputs.items():
        interpreter.set_tensor(inp["index"], x[None].astype(np.float32))
        interpreter.invoke()
        reference[f"{key}_input"] = x
        for j, out in enumerate(interpreter.get_output_details()):
            if kept is None or j in kept:
                reference[f"{key}_output{j}"] = interpreter.get_tensor(out["index"])[0][kept[j] if kept else ()]
    references.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(references / f"{name}_reference.npz", **reference)
    print(f"{name}: {len(ops)} operators, {sum(v.size for v in constants.values()):,} constants -> {outdir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="folder to write NAME.safetensors into")
    parser.add_argument("--references", type=Path, required=True, help="folder to write NAME_reference.npz into")
    parser.add_argument("--wheel", type=Path, help="the mediapipe package folder (default: the installed one's)")
    args = parser.parse_args(argv)
    root = args.wheel
    if root is None:
        import mediapipe

        root = Path(mediapipe.__file__).parent
    for name, (path, _, _) in MODELS.items():
        convert(root / path, name, args.outdir, args.references)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert MediaPipe's BlazePose person detector into the file ``mould.reconstruction.person_detector`` reads.

MediaPipe (Google, Apache-2.0) ships its pose detector, ``mediapipe/modules/pose_detection/pose_detection.tflite``,
inside the ``mediapipe`` wheels up to 0.10.14: a MobileNet-style network trained on real photographs of
people that, from a 224x224 image, scores 2,254 anchors and regresses for each a box and four keypoints
(the hips' middle and a point whose distance from it is the radius of a circle around the whole body, the
same two for the upper body). Its weights are stored sparse and in float16 behind DENSIFY and DEQUANTIZE
operators that a plain interpreter would have to decode; this tool runs the model once in LiteRT with every
tensor kept, reads each constant as the operator that uses it sees it (dense), and writes:

- the constants, in float16 (as the model stores them: lossless), to a safetensors file whose metadata holds
  the graph as JSON: the operators in order (CONV_2D, DEPTHWISE_CONV_2D, ADD, PAD, RESHAPE, DEPTH_TO_SPACE,
  RESIZE_BILINEAR, CONCATENATION) with their options and tensor names;
- ``reference.npz`` beside it: LiteRT's raw outputs on a few inputs, for the cross-check test.

It needs a scratch environment with ``mediapipe==0.10.14``, ``tflite`` and ``ai-edge-litert`` (the package
itself does not)::

    python -m venv /tmp/mp && /tmp/mp/bin/pip install mediapipe==0.10.14 tflite ai-edge-litert
    /tmp/mp/bin/python tools/pose_detector_weights.py mould/reconstruction/assets
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
    if name in ("PAD", "RESHAPE"):
        return {}
    raise ValueError(f"operator {name} is not supported")


def convert(model_path: Path, outdir: Path) -> None:
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
        name = names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if name in SKIPPED:
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
                "op": name,
                "inputs": [str(t) for t in inputs],
                "outputs": [str(t) for t in outputs],
                **_options(op, name, tflite),
            }
        )
        produced.update(outputs)
    spec = {
        "source": "mediapipe 0.10.14, mediapipe/modules/pose_detection/pose_detection.tflite (Apache-2.0)",
        "input": str(int(graph.Inputs(0))),
        "outputs": [str(int(graph.Outputs(i))) for i in range(graph.OutputsLength())],
        "ops": ops,
    }
    outdir.mkdir(parents=True, exist_ok=True)
    save_file(constants, str(outdir / "pose_detection.safetensors"), metadata={"graph": json.dumps(spec)})

    # LiteRT's raw outputs on a few inputs, for the numpy interpreter's cross-check.
    inputs = {
        "noise": rng.uniform(-1, 1, (224, 224, 3)).astype(np.float16),
        "grey": np.zeros((224, 224, 3), np.float16),
    }
    reference = {}
    for key, x in inputs.items():
        interpreter.set_tensor(inp["index"], x[None].astype(np.float32))
        interpreter.invoke()
        reference[f"{key}_input"] = x
        for j, out in enumerate(interpreter.get_output_details()):
            reference[f"{key}_output{j}"] = interpreter.get_tensor(out["index"])[0]
    np.savez_compressed(outdir / "reference.npz", **reference)
    print(f"{len(ops)} operators, {sum(v.size for v in constants.values()):,} constants -> {outdir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="folder to write pose_detection.safetensors into")
    parser.add_argument("--model", type=Path, help="the .tflite file (default: the installed mediapipe's)")
    args = parser.parse_args(argv)
    model = args.model
    if model is None:
        import mediapipe

        model = Path(mediapipe.__file__).parent / "modules" / "pose_detection" / "pose_detection.tflite"
    convert(model, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

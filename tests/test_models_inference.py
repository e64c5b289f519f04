"""Inference helpers and the model CLI commands (model-info, export-onnx)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mould.models import CONFIGS, build_model, predict, predict_moulds, save_checkpoint
from mould.models.inference import images_to_tensor, reference_from_height

from mould.camera import Camera, look_at
from mould.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def camera(side: int, kind: str = "perspective") -> Camera:
    return Camera(kind, side, side * 2.0, (side - 1) / 2, (side - 1) / 2, look_at([0, 0, 3.0], [0, 0, 0]))


def test_images_to_tensor_accepts_uint8_and_float():
    rgb = np.zeros((2, 64, 64, 3), np.uint8)
    rgb[..., 0] = 255
    tensor = images_to_tensor(rgb)
    assert tensor.shape == (2, 3, 64, 64) and tensor.dtype == torch.float32
    assert torch.all(tensor[:, 0] == 1) and torch.all(tensor[:, 1:] == 0)
    assert images_to_tensor(rgb[0]).shape == (1, 3, 64, 64)
    assert torch.equal(images_to_tensor(tensor.double()), tensor)
    with pytest.raises(ValueError, match="images"):
        images_to_tensor(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError, match="images"):
        images_to_tensor(torch.zeros(1, 64, 64, 3))


def test_predict_is_the_final_stack_in_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    model = build_model("tiny")
    images = torch.rand(2, 3, 64, 64)
    prediction = predict(model, images)
    visible, hidden, mask_prob = prediction.visible, prediction.hidden, prediction.mask_prob
    assert model.training
    model.eval()
    with torch.no_grad():
        final = model(images)[-1]
    assert torch.equal(visible, final["visible"]) and torch.equal(hidden, final["hidden"])
    assert torch.equal(mask_prob, torch.sigmoid(final["mask_logits"]))
    assert visible.shape == (2, 1, 64, 64)


def test_predict_moulds_places_relative_depth_at_the_reference():
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    # Force a confident, known prediction: the last head's bias decides the maps everywhere.
    final_conv = model.stacks[-1].head.fuse_full[-1]
    with torch.no_grad():
        final_conv.weight.zero_()
        final_conv.bias.copy_(torch.tensor([0.0, 0.0, 20.0]))
        model.stacks[-1].coarse.weight.zero_()
        model.stacks[-1].coarse.bias.copy_(torch.tensor([-0.2, 1.0, 0.0]))
        # The back colour's logits, from the branch, corrections to the front's: 0 keeps red at the crop's
        # 128, +-20 saturate green and blue to 255 and 0.
        model.back_branch.fine[-1].weight.zero_()
        model.back_branch.fine[-1].bias.copy_(torch.tensor([20.0, 0.0, 20.0, -20.0]))  # the gate open
    images = np.full((2, 64, 64, 3), 128, np.uint8)
    moulds = predict_moulds(model, images, [camera(64), camera(64, "orthographic")], [3.0, 2.0])
    thickness = float(torch.nn.functional.softplus(torch.tensor(1.0))) * model.config.depth_scale
    for mould, reference in zip(moulds, (3.0, 2.0)):
        assert mould.mask.all()
        np.testing.assert_allclose(mould.visible, reference - 0.2 * model.config.depth_scale, atol=1e-5)
        np.testing.assert_allclose(mould.hidden - mould.visible, thickness, atol=1e-5)
        assert mould.image.shape == (64, 64, 3)
        assert mould.back_image.shape == (64, 64, 3)
        np.testing.assert_array_equal(mould.back_image[5, 7], [128, 255, 0])
    assert moulds[1].camera.kind == "orthographic"
    with pytest.raises(ValueError, match="behind the camera"):
        predict_moulds(model, images[:1], [camera(64)], 0.05)
    with pytest.raises(ValueError, match="cameras"):
        predict_moulds(model, images, [camera(64)], 3.0)
    with pytest.raises(ValueError, match="resolution"):
        predict_moulds(model, images, [camera(128)] * 2, 3.0)
    with pytest.raises(ValueError, match="reference"):
        predict_moulds(model, images, [camera(64)] * 2, [3.0])


def test_reference_from_height_inverts_the_pinhole():
    # A 1.7 m person 4 m away, focal 512 px: 1.7 * 512 / 4 = 217.6 -> 218 rows.
    mask = np.zeros((256, 256), bool)
    mask[19:237, 100:150] = True
    cam = Camera("perspective", 256, 512.0, 127.5, 127.5, np.eye(4))
    assert reference_from_height(mask, cam) == pytest.approx(512 * 1.7 / 218)
    assert reference_from_height(mask, cam, person_height=0.85) == pytest.approx(512 * 0.85 / 218)
    with pytest.raises(ValueError, match="orthographic"):
        reference_from_height(mask, camera(256, "orthographic"))
    with pytest.raises(ValueError, match="empty"):
        reference_from_height(np.zeros_like(mask), cam)


# -- CLI -------------------------------------------------------------------------------------------------
def test_model_info_json(capsys):
    assert main(["model-info", "--config", "tiny", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    model = build_model("tiny")
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["resolution"] == 256 and info["flops"] > 1e8
    assert info["architecture"]["features"] == CONFIGS["tiny"].features


def test_model_info_table_and_errors(capsys):
    assert main(["model-info", "--resolution", "64"]) == 0
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in CONFIGS)
    assert main(["model-info", "--config", "huge"]) == 2
    assert "known: paper, medium, small, tiny" in capsys.readouterr().err
    assert main(["model-info", "--config", "tiny", "--resolution", "100"]) == 2


def test_export_onnx_command(tmp_path, capsys):
    pytest.importorskip("onnx")
    checkpoint = save_checkpoint(tmp_path / "net.safetensors", build_model("tiny"), CONFIGS["tiny"])
    output = tmp_path / "net.onnx"
    assert main(["export-onnx", "--checkpoint", str(checkpoint), "-o", str(output), "--resolution", "64"]) == 0
    assert output.is_file() and "wrote" in capsys.readouterr().out
    bad = tmp_path / "evil.safetensors"
    bad.write_bytes(b"\x80\x04\x95")
    assert main(["export-onnx", "--checkpoint", str(bad), "-o", str(tmp_path / "x.onnx")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pickle" in error and not (tmp_path / "x.onnx").exists()
    assert main(["export-onnx", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "x.txt")]) == 2
    assert main(["export-onnx", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "no" / "x.onnx")]) == 2

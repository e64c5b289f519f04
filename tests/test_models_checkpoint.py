"""Checkpoints (safetensors, never unpickled) and ONNX export."""

from __future__ import annotations

import dataclasses
import io
import pickle
import zipfile

import numpy as np
import pytest
import torch
from mould.models import CONFIGS, build_model, load_checkpoint, save_checkpoint
from mould.models.checkpoint import read_checkpoint_metadata

from mould.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trained_looking(name: str = "tiny", seed: int = 0) -> torch.nn.Module:
    """A network whose batch-norm statistics are not the identity they start as, so that a checkpoint
    or an export that dropped them would show."""
    torch.manual_seed(seed)
    model = build_model(name)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.num_batches_tracked.fill_(17)
    return model.eval()


class CodeRunner:
    """Unpickling this creates ``marker``: proof that a loader executed code from the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_save_load_preserves_outputs_exactly(tmp_path):
    model = trained_looking()
    config = dataclasses.replace(CONFIGS["tiny"], name="mine", depth_scale=0.4)
    model.config = config  # same architecture, another scale: the stored config must be the one given
    path = save_checkpoint(tmp_path / "net.safetensors", model, config, {"step": "12", "data": "synth"})
    loaded, loaded_config, metadata = load_checkpoint(path)
    assert loaded_config == config and metadata == {"step": "12", "data": "synth"}
    assert not loaded.training
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(image), loaded(image)):
            for key in a:
                assert torch.equal(a[key], b[key]), key
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert list(tmp_path.iterdir()) == [path]  # atomic: no temporary file left


def test_channels_last_model_saves_plain_tensors(tmp_path):
    model = trained_looking().to(memory_format=torch.channels_last)
    path = save_checkpoint(tmp_path / "net.safetensors", model, model.config)
    loaded, _, _ = load_checkpoint(path)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image)[-1]["hidden"], model(image)[-1]["hidden"], rtol=1e-5, atol=1e-5)


def test_reserved_or_non_string_metadata_is_refused(tmp_path):
    model = build_model("tiny")
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "a.safetensors", model, model.config, {"model_config": "{}"})
    with pytest.raises(ValueError, match="strings"):
        save_checkpoint(tmp_path / "a.safetensors", model, model.config, {"step": 3})


@pytest.mark.parametrize("container", ["raw", "torch"])
def test_pickles_are_refused_and_never_run(tmp_path, container):
    marker = tmp_path / "pwned"
    payload = {"weights": CodeRunner(str(marker))}
    path = tmp_path / "weights.safetensors"  # the name does not make it safetensors
    if container == "raw":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)  # a zip archive holding data.pkl
    # The file is a real threat: loading it the unsafe way runs its code.
    if container == "raw":
        pickle.loads(path.read_bytes())
    else:
        # (from bytes: torch.load would treat a path ending in .safetensors as safetensors)
        torch.load(io.BytesIO(path.read_bytes()), weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(InputError, match="pickle") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 7, b"hello world, not a checkpoint", (10**9).to_bytes(8, "little") + b"{}", b"\x02\x00" * 40],
)
def test_garbage_files_are_input_errors(tmp_path, content):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(content)
    with pytest.raises(InputError, match="junk.safetensors"):
        load_checkpoint(path)


def test_missing_file_and_foreign_safetensors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(InputError, match="no such file"):
        load_checkpoint(tmp_path / "absent.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign, metadata={"author": "someone"})
    with pytest.raises(InputError, match="not a mould checkpoint"):
        load_checkpoint(foreign)


def test_weights_that_do_not_fit_the_config(tmp_path):
    from safetensors.torch import load_file, save_file

    path = save_checkpoint(tmp_path / "net.safetensors", build_model("tiny"), CONFIGS["tiny"])
    metadata = read_checkpoint_metadata(path)
    tensors = load_file(path)
    # Claim the small architecture for tiny weights.
    metadata["model_config"] = CONFIGS["small"].to_json()
    save_file(tensors, tmp_path / "liar.safetensors", metadata=metadata)
    with pytest.raises(InputError, match="do not fit the config 'small'"):
        load_checkpoint(tmp_path / "liar.safetensors")
    metadata["model_config"] = '{"stacks": -1}'
    save_file(tensors, tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(InputError, match="invalid model config"):
        load_checkpoint(tmp_path / "bad.safetensors")
    metadata["model_config"] = CONFIGS["tiny"].to_json()
    tensors.pop(next(iter(tensors)))
    save_file(tensors, tmp_path / "short.safetensors", metadata=metadata)
    with pytest.raises(InputError, match="missing"):
        load_checkpoint(tmp_path / "short.safetensors")


def test_format_1_checkpoints_load_with_their_biases_folded(tmp_path):
    from conftest import randomised_legacy_state
    from mould.models.legacy import legacy_network
    from safetensors.torch import save_file

    config = CONFIGS["tiny"]
    generator = torch.Generator().manual_seed(2)
    state = randomised_legacy_state(config, generator)
    metadata = {"format": "mould-checkpoint", "format_version": "1", "model_config": config.to_json(), "step": "7"}
    save_file(state, tmp_path / "old.safetensors", metadata=metadata)
    model, loaded_config, extra = load_checkpoint(tmp_path / "old.safetensors")
    assert loaded_config == config and extra == {"step": "7"}
    image = torch.rand(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected, got = legacy_network(config, state)(image)[-1], model(image)[-1]
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-4 * float(expected[key].abs().max()))
    # Saved again, it is a format-2 checkpoint with the same outputs.
    again, _, _ = load_checkpoint(save_checkpoint(tmp_path / "new.safetensors", model, config))
    assert read_checkpoint_metadata(tmp_path / "new.safetensors")["format_version"] == "2"
    with torch.no_grad():
        torch.testing.assert_close(again(image)[-1]["visible"], got["visible"], rtol=0, atol=0)
    # A format-1 file whose tensors are not a format-1 network is one line naming the file.
    state.pop("stem_full.1.running_mean")
    save_file(state, tmp_path / "broken.safetensors", metadata=metadata)
    with pytest.raises(InputError, match="broken.safetensors: the weights do not fit"):
        load_checkpoint(tmp_path / "broken.safetensors")


def test_a_truncated_checkpoint_is_an_input_error(tmp_path):
    path = save_checkpoint(tmp_path / "net.safetensors", build_model("tiny"), CONFIGS["tiny"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(InputError, match="net.safetensors"):
        load_checkpoint(path)


def test_zip_detection_message_names_torch_save(tmp_path):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x04N.")
    with pytest.raises(InputError, match="torch.save"):
        load_checkpoint(path)


# -- ONNX ------------------------------------------------------------------------------------------------
def test_onnx_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from mould.models.onnx import export_onnx

    model = trained_looking("tiny")
    model.train()  # the export must switch to eval and restore the mode
    path = export_onnx(model, tmp_path / "net.onnx", resolution=256)
    assert model.training
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["visible", "hidden", "mask_logits", "back"]
    model.eval()
    for batch in (1, 3):  # the batch axis is dynamic
        image = torch.rand(batch, 3, 256, 256)
        outputs = session.run(None, {"image": image.numpy()})
        with torch.no_grad():
            final = model(image)[-1]
        for name, value in zip(("visible", "hidden", "mask_logits", "back"), outputs):
            assert value.shape == (batch, 3 if name == "back" else 1, 256, 256)
            np.testing.assert_allclose(value, final[name].numpy(), rtol=0, atol=1e-4, err_msg=name)
    from mould.models import ModelConfig

    metadata = session.get_modelmeta().custom_metadata_map
    assert ModelConfig.from_json(metadata["model_config"]) == model.config


def test_onnx_export_checks_the_resolution(tmp_path):
    pytest.importorskip("onnx")
    from mould.models.onnx import export_onnx

    with pytest.raises(ValueError, match="resolution"):
        export_onnx(build_model("tiny"), tmp_path / "net.onnx", resolution=100)
    assert not (tmp_path / "net.onnx").exists()


def test_onnx_export_without_the_onnx_package_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from mould.models.onnx import export_onnx

    from mould.errors import MouldError

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(MouldError, match=r"pip install 'mould\[onnx\]'"):
        export_onnx(build_model("tiny"), tmp_path / "net.onnx", resolution=64)
    assert not (tmp_path / "net.onnx").exists()


def test_fp16_weights_are_the_fp32_ones_rounded_and_predict_alike(tmp_path):
    from mould.models.checkpoint import convert_checkpoint
    from safetensors.torch import load_file

    model = trained_looking()
    full = save_checkpoint(tmp_path / "fp32.safetensors", model, model.config, {"step": "7"})
    half = convert_checkpoint(full, tmp_path / "fp16.safetensors")
    stored = load_file(half)
    parameters = dict(model.named_parameters())
    for name, value in stored.items():
        # Parameters halve; BatchNorm statistics (a running variance may lie below float16's normal range)
        # and the integer batch counters are kept as they are.
        expected = torch.float16 if name in parameters else model.state_dict()[name].dtype
        assert value.dtype == expected, name
    assert half.stat().st_size < 0.75 * full.stat().st_size
    loaded, config, metadata = load_checkpoint(half)
    assert config == model.config and metadata == {"step": "7"}
    # Loading gives exactly the float32 network with its parameters rounded to float16...
    rounded = trained_looking()
    with torch.no_grad():
        for parameter in rounded.parameters():
            parameter.copy_(parameter.half().float())
    for key, value in rounded.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # ...whose outputs stay within float16 round-off of the original's: each weight moves by at most 2^-11 of
    # itself, which through the ~30 layers of tiny moved outputs by 1-4e-4 (relative units of 0.5 m) when
    # measured; 2e-3 (1 mm) leaves room, and a wrongly stored tensor (e.g. a lost BatchNorm statistic)
    # moves outputs by ~0.1 or more.
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        for ours, theirs in zip(loaded(image), model(image)):
            for key in ours:
                torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=2e-3, msg=key)


def test_fp16_refuses_weights_beyond_its_range(tmp_path):
    model = trained_looking()
    with torch.no_grad():
        model.stem_full.weight[0, 0, 0, 0] = 1e5
    with pytest.raises(ValueError, match="stem_full.weight exceeds float16"):
        save_checkpoint(tmp_path / "a.safetensors", model, model.config, precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        save_checkpoint(tmp_path / "a.safetensors", model, model.config, precision="int8")


def test_convert_checkpoint_tool(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "convert_checkpoint.py"
    full = save_checkpoint(tmp_path / "fp32.safetensors", trained_looking(), CONFIGS["tiny"])
    done = subprocess.run(
        [sys.executable, str(tool), str(full), str(tmp_path / "h.safetensors")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "fp16" in done.stdout and (tmp_path / "h.safetensors").is_file()
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint at all")
    done = subprocess.run(
        [sys.executable, str(tool), str(tmp_path / "bad.safetensors"), str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "bad.safetensors" in done.stderr


def test_averaged_checkpoints_hold_the_mean_of_every_float_tensor(tmp_path):
    from mould.models.checkpoint import average_checkpoints

    first, second = trained_looking(seed=1), trained_looking(seed=2)
    with torch.no_grad():
        for value in second.state_dict().values():  # every tensor differs from the first's (biases start at 0)
            if value.is_floating_point():
                value.add_(torch.rand_like(value) + 0.1)
            else:
                value.fill_(99)
    paths = [
        save_checkpoint(tmp_path / f"{k}.safetensors", model, model.config, {"step": str(k)})
        for k, model in enumerate((first, second))
    ]
    averaged, config, metadata = load_checkpoint(average_checkpoints(paths, tmp_path / "soup.safetensors"))
    assert config == first.config
    assert metadata == {"averaged_from": '["0.safetensors", "1.safetensors"]'}
    a, b = first.state_dict(), second.state_dict()
    for key, value in averaged.state_dict().items():
        if value.is_floating_point():  # weights and BatchNorm statistics alike
            expected = ((a[key].double() + b[key].double()) / 2).float()
            assert not torch.equal(a[key], b[key]), key  # the two networks differ everywhere...
            assert torch.equal(value, expected), key  # ...and the average is their midpoint
        else:
            assert torch.equal(value, a[key]) and int(value) == 17, key  # batch counters: the first's


def test_a_checkpoint_averaged_with_itself_is_unchanged(tmp_path):
    from mould.models.checkpoint import average_checkpoints

    model = trained_looking()
    path = save_checkpoint(tmp_path / "a.safetensors", model, model.config)
    averaged, _, _ = load_checkpoint(average_checkpoints([path, path, path], tmp_path / "aaa.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(averaged.state_dict()[key], value), key


def test_averaging_refuses_one_checkpoint_or_two_networks(tmp_path):
    from mould.models.checkpoint import average_checkpoints

    tiny = save_checkpoint(tmp_path / "tiny.safetensors", trained_looking(), CONFIGS["tiny"])
    small = build_model("small")
    other = save_checkpoint(tmp_path / "small.safetensors", small, small.config)
    with pytest.raises(InputError, match="two checkpoints or more"):
        average_checkpoints([tiny], tmp_path / "out.safetensors")
    with pytest.raises(InputError, match=r"small\.safetensors: holds model config 'small'.*tiny\.safetensors"):
        average_checkpoints([tiny, other], tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_average_checkpoints_tool(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "average_checkpoints.py"
    paths = [
        str(save_checkpoint(tmp_path / f"{seed}.safetensors", trained_looking(seed=seed), CONFIGS["tiny"]))
        for seed in (1, 2)
    ]
    done = subprocess.run(
        [sys.executable, str(tool), str(tmp_path / "soup.safetensors"), *paths], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "average of 2 checkpoints" in done.stdout and (tmp_path / "soup.safetensors").is_file()
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint at all")
    done = subprocess.run(
        [sys.executable, str(tool), str(tmp_path / "x.safetensors"), paths[0], str(tmp_path / "bad.safetensors")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "bad.safetensors" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "x.safetensors").exists()

"""Every command over the hostile and careless inputs of issue #15: one line naming the problem, the
documented exit code, no traceback, no partial output. The files are small and made here."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_samples import npy_header, npz_members, png_header_bomb, write_members
from test_container import make_mould

from mould.cli import main


def one_line_error(capsys, code: int, *fragments: str, exit_code: int = 2) -> str:
    """Assert exit code ``exit_code`` and one error line holding every fragment; returns the line."""
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert code == exit_code and len(lines) == 1 and "Traceback" not in err, err
    assert all(fragment in lines[0] for fragment in fragments), (fragments, lines[0])
    return lines[0]


@pytest.fixture
def header_bomb(tmp_path) -> Path:
    """A mould whose ``visible`` header claims 200000² float32 (149 GiB) in a file of a few kB."""
    good = make_mould().save(tmp_path / "good.npz")
    members = npz_members(good)
    members["visible"] = npy_header((200_000, 200_000)) + bytes(64)
    write_members(tmp_path / "bomb.npz", members)
    return tmp_path / "bomb.npz"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    import torch
    from mould.models import build_model
    from mould.models.checkpoint import save_checkpoint
    from mould.models.configs import CONFIGS

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, build_model("tiny"), CONFIGS["tiny"])
    return path


@pytest.fixture(scope="module")
def huge_config(tmp_path_factory) -> Path:
    """A checkpoint of one tensor whose metadata asks for a 1.7 G-parameter network (the issue's: 360 GB)."""
    import torch
    from mould.models.configs import CONFIGS
    from safetensors.torch import save

    config = dataclasses.replace(CONFIGS["paper"], name="huge", features=4096, stem_features=4096)
    metadata = {"format": "mould-checkpoint", "format_version": "2", "model_config": config.to_json()}
    path = tmp_path_factory.mktemp("huge") / "huge.safetensors"
    path.write_bytes(save({"x": torch.zeros(1)}, metadata=metadata))
    return path


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- .npz headers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["decode", "show"])
def test_a_header_bomb_is_one_line_for_decode_and_show(tmp_path, capsys, header_bomb, command):
    output = tmp_path / ("out.obj" if command == "decode" else "out.png")
    code = main([command, str(header_bomb), "-o", str(output)])
    one_line_error(capsys, code, str(header_bomb), "149 GiB")
    assert not output.exists()


def test_a_header_bomb_sample_is_one_line_for_data_show_and_eval(tmp_path, capsys, header_bomb, checkpoint):
    from mould.datasets.samples import write_sample

    folder = tmp_path / "samples"
    folder.mkdir()
    mould = make_mould()
    write_sample(folder, "s0", mould, mould.image, {"source": "test"})
    shutil.copy(header_bomb, folder / "s0.npz")
    code = main(["data", "show", str(folder), "-o", str(tmp_path / "sheet.png")])
    one_line_error(capsys, code, "no readable sample")
    code = main(["eval", "--checkpoint", str(checkpoint), "--data", str(folder), "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "none of the 1 samples could be read")


def test_nan_normals_are_one_line_for_decode(tmp_path, capsys):
    with np.load(make_mould().save(tmp_path / "m.npz")) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["hidden_normals"] = np.full_like(arrays["hidden_normals"], np.nan)
    np.savez(tmp_path / "nan.npz", **arrays)
    code = main(["decode", str(tmp_path / "nan.npz"), "-o", str(tmp_path / "x.obj"), "--mesher", "poisson"])
    one_line_error(capsys, code, "nan.npz", "hidden_normals: expected finite values")
    assert not (tmp_path / "x.obj").exists()


def test_a_mould_10_km_thick_decodes_with_a_bounded_side_band(tmp_path, capsys):
    """Issue #15: 10 km of thickness asked Poisson for 10^9 side-band points (8 GiB)."""
    from mould.decode import side_band

    mould = make_mould(with_optional=False)
    thick = mould.replace(hidden=np.where(mould.mask, mould.visible + 10_000.0, 0).astype(np.float32))
    assert len(side_band(thick)) <= mould.resolution * int(mould.mask.sum())  # at most N points a ray
    thick.save(tmp_path / "thick.npz")
    code = main(["decode", str(tmp_path / "thick.npz"), "-o", str(tmp_path / "thick.ply"), "--mesher", "poisson"])
    assert code == 0, capsys.readouterr().err


# -- checkpoints ----------------------------------------------------------------------------------------------
def test_a_checkpoint_asking_for_a_huge_network_is_refused(tmp_path, capsys, huge_config):
    from PIL import Image
    from test_reconstruction import _person_rgba

    Image.fromarray(_person_rgba(), "RGBA").save(tmp_path / "p.png")
    code = main(
        ["reconstruct", str(tmp_path / "p.png"), "-o", str(tmp_path / "out"), "--checkpoint", str(huge_config)]
    )
    one_line_error(capsys, code, str(huge_config), "parameters", "more than 100,000,000")
    code = main(["export-onnx", "--checkpoint", str(huge_config), "-o", str(tmp_path / "m.onnx")])
    one_line_error(capsys, code, str(huge_config), "parameters")
    assert not (tmp_path / "m.onnx").exists()


# -- outputs that are folders ---------------------------------------------------------------------------------
def test_an_output_that_is_a_folder_is_one_line(tmp_path, capsys, checkpoint):
    make_mould().save(tmp_path / "m.npz")
    (tmp_path / "out" / "x.obj").mkdir(parents=True)
    code = main(["decode", str(tmp_path / "m.npz"), "-o", str(tmp_path / "out" / "x.obj"), "--mesher", "stitch"])
    one_line_error(capsys, code, "x.obj", "is a folder")
    (tmp_path / "m.onnx").mkdir()
    code = main(["export-onnx", "--checkpoint", str(checkpoint), "-o", str(tmp_path / "m.onnx")])
    one_line_error(capsys, code, "m.onnx", "is a folder")
    assert _files(tmp_path / "out") == ["x.obj"]


def test_reconstruct_reports_an_output_name_taken_by_a_folder_and_goes_on(tmp_path, capsys, checkpoint):
    from PIL import Image
    from test_reconstruction import _person_rgba

    for name in ("a", "b"):
        Image.fromarray(_person_rgba(), "RGBA").save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    (out / "a.ply").mkdir(parents=True)
    arguments = [str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--checkpoint", str(checkpoint)]
    code = main(["reconstruct", *arguments, "--format", "ply", "--mesher", "stitch", "--no-preview"])
    one_line_error(capsys, code, "a.ply", "is a folder", exit_code=1)
    assert _files(out) == ["a.ply", "b.ply", "report.json"]  # nothing of a is left, b is done
    statuses = [result["status"] for result in json.loads((out / "report.json").read_text())["results"]]
    assert statuses == ["error", "ok"]


def test_eval_out_naming_a_file_is_refused_before_the_work(tmp_path, capsys, checkpoint):
    from mould.datasets.samples import write_sample

    mould = make_mould()
    (tmp_path / "samples").mkdir()
    write_sample(tmp_path / "samples", "s0", mould, mould.image, {"source": "test"})
    (tmp_path / "report").write_text("a file")
    arguments = ["--checkpoint", str(checkpoint), "--data", str(tmp_path / "samples"), "--out"]
    code = main(["eval", *arguments, str(tmp_path / "report")])
    one_line_error(capsys, code, "--out", "is a file, not a folder")
    assert (tmp_path / "report").read_text() == "a file"


# -- the user's photo -----------------------------------------------------------------------------------------
def test_reconstruct_never_replaces_its_input_or_another_output(tmp_path, capsys, checkpoint):
    """Issue #15: out/x.png became its own texture; x.png's preview replaced the input x_preview.png."""
    from PIL import Image
    from test_reconstruction import _person_rgba

    out = tmp_path / "out"
    out.mkdir()
    for name in ("x", "x_preview"):
        Image.fromarray(_person_rgba(), "RGBA").save(out / f"{name}.png")
    before = {name: (out / f"{name}.png").read_bytes() for name in ("x", "x_preview")}
    arguments = [str(out / f"{name}.png") for name in before] + ["-o", str(out), "--checkpoint", str(checkpoint)]
    assert main(["reconstruct", *arguments, "--format", "obj", "--mesher", "stitch"]) == 0
    assert {name: (out / f"{name}.png").read_bytes() for name in before} == before
    results = json.loads((out / "report.json").read_text())["results"]
    outputs = [set(result["outputs"]) for result in results]
    assert all(result["status"] == "ok" for result in results)
    assert sum(len(o) for o in outputs) == len(set().union(*outputs)) == 2 * 4  # obj, mtl, texture, preview
    assert not set().union(*outputs) & {str(out / f"{name}.png") for name in before}
    assert str(out / "x_2_preview.png") in outputs[0]  # x's preview would have been the input x_preview.png


# -- numeric options ----------------------------------------------------------------------------------------
TRAIN = ["train", "--data", "{tmp}", "--out", "{tmp}/run", "--config", "tiny"]
OPTIONS = {  # case -> (arguments, with {tmp} and {mesh} filled in; what the line says)
    "compare samples": (["compare", "{mesh}", "{mesh}", "--samples", "1000000000"], "--samples: expected 100 to"),
    "compare seed": (["compare", "{mesh}", "{mesh}", "--seed", "-1"], "--seed"),
    "compare tau": (["compare", "{mesh}", "{mesh}", "--tau", "nan"], "--tau"),
    "bench encode 0": (["bench", "encode", "--resolutions", "0"], "--resolutions: expected sides from 8 to 4096"),
    "bench encode repeats": (["bench", "encode", "--repeats", "0"], "--repeats"),
    "encode elevation": (["encode", "{mesh}", "-o", "{tmp}/m.npz", "--elevation", "91"], "--elevation"),
    "encode yaw": (["encode", "{mesh}", "-o", "{tmp}/m.npz", "--yaw", "inf"], "--yaw"),
    "export resolution": (
        ["export-onnx", "--checkpoint", "{mesh}", "-o", "{tmp}/m.onnx", "--resolution", "99999"],
        "--resolution",
    ),
    "model-info resolution": (["model-info", "--resolution", "0"], "--resolution"),
    "eval mesh samples": (["eval", "--data", "{tmp}", "--mesh-samples", "100000000"], "--mesh-samples"),
    "train seed": ([*TRAIN, "--seed", "-1"], "--seed"),
    "train adversarial weight": ([*TRAIN, "--adversarial-weight", "inf"], "--adversarial-weight"),
    "train batch": ([*TRAIN, "--batch-size", "100000"], "--batch-size"),
    "train workers": ([*TRAIN, "--workers", "100000"], "--workers"),
    "reconstruct distance": (["reconstruct", "{mesh}", "-o", "{tmp}/o", "--distance", "inf"], "--distance"),
    "synth seed": (["synth", "{tmp}/s", "--count", "1", "--seed", "-3"], "--seed"),
}


@pytest.mark.parametrize("case", sorted(OPTIONS))
def test_numeric_options_are_range_checked(tmp_path, capsys, case):
    import trimesh

    mesh = tmp_path / "box.ply"
    trimesh.creation.box().export(mesh)
    arguments, says = OPTIONS[case]
    arguments = [a.format(tmp=tmp_path, mesh=mesh) for a in arguments]
    one_line_error(capsys, main(arguments), says)


def test_compare_refuses_a_mesh_of_zero_area(tmp_path, capsys):
    import trimesh

    (tmp_path / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    trimesh.creation.box().export(tmp_path / "box.ply")
    code = main(["compare", str(tmp_path / "flat.obj"), str(tmp_path / "box.ply")])
    one_line_error(capsys, code, "flat.obj", "zero area")


# -- training states and backgrounds --------------------------------------------------------------------------
def test_resume_refuses_a_state_with_impossible_counters(tmp_path, capsys):
    """Issue #15: step -5 and 1e18 samples were accepted (and named checkpoints step_-00002)."""
    import torch
    from conftest import TINY, make_samples

    data = make_samples(tmp_path / "data", 2)
    run = tmp_path / "run"
    assert main(["-q", "train", *TINY, "--steps", "1", "--data", str(data), "--out", str(run)]) == 0
    state_file = run / "checkpoints" / "step_000001_state.pt"
    state = torch.load(state_file, weights_only=True)
    changes = [
        ({"step": -5}, "step -5"),
        ({"consumed": 10**18}, "consumed"),
        ({"elapsed_s": float("nan")}, "elapsed_s"),
    ]
    for change, says in changes:
        torch.save({**state, **change}, state_file)
        code = main(["-q", "train", *TINY, "--steps", "3", "--data", str(data), "--out", str(run), "--resume"])
        one_line_error(capsys, code, str(state_file), "invalid training state", says)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
            "latest", "step_000001.safetensors", "step_000001_state.pt"
        ]  # fmt: skip


def test_train_config_refuses_nan_and_out_of_range_values():
    from mould.errors import InputError
    from mould.training.config import make_train_config

    for change in ({"grad_clip": float("nan")}, {"adversarial_start": float("inf")}, {"steps": 10**10}):
        with pytest.raises(InputError, match=f"--{next(iter(change)).replace('_', '-')}: expected"):
            make_train_config("tiny", data=((Path("d"), 1.0),), out=Path("r"), **change)


def test_a_bomb_background_is_skipped_with_one_warning(tmp_path, caplog):
    """Issue #15: a decompression-bomb PNG in --backgrounds printed a worker traceback."""
    import torch
    from mould.datasets.backdrops import draw_backdrop, paint_backdrops

    png_header_bomb(tmp_path / "bomb.png", 30_000, 30_000)
    rng = np.random.default_rng(0)
    with caplog.at_level("WARNING", logger="mould.datasets.backdrops"):
        draws = [draw_backdrop(32, rng, images=[tmp_path / "bomb.png"]) for _ in range(5)]
    assert all(draw.photo is None for draw in draws)  # procedural instead
    generators = [torch.Generator().manual_seed(i) for i in range(5)]
    pictures = paint_backdrops(draws, 32, generators, torch.device("cpu")).numpy()
    assert pictures.shape == (5, 32, 32, 3) and np.isfinite(pictures).all()
    warnings = [r for r in caplog.records if "bomb.png" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()

"""The core CLI in-process: encode -> decode -> show, --help everywhere, and every bad input of issue 2
(one line naming the file and the problem, exit code 2, no traceback, no output file left behind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from mould.cli import COMMANDS, build_parser, main
from mould.commands.bench import BENCHES
from mould.container import Mould


@pytest.fixture
def sphere_ply(tmp_path) -> Path:
    path = tmp_path / "in" / "sphere.ply"
    path.parent.mkdir()
    trimesh.creation.icosphere(subdivisions=2, radius=0.4).export(path)
    return path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, command: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mould {command}: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- help ------------------------------------------------------------------------------------------------
def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize(
    "argv", [[name, "--help"] for name in COMMANDS] + [["bench", b, "--help"] for b in BENCHES]
)
def test_every_subcommand_has_help(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mould " + " ".join(argv[:-1]))


def test_every_option_is_explained():
    parser = build_parser()
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in current._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{current.prog} {action.option_strings} has no help text"
            if action.choices and isinstance(action.choices, dict):
                stack.extend(action.choices.values())  # subparsers


# -- the main job ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("camera", ["perspective", "orthographic"])
def test_encode_decode_show(capsys, tmp_path, sphere_ply, camera):
    mould_path = tmp_path / "out" / "sphere.npz"
    code, out, err = run_cli(
        capsys, "encode", sphere_ply, "-o", mould_path, "--resolution", 33, "--camera", camera
    )
    assert code == 0, err
    assert f"wrote {mould_path}" in out
    mould = Mould.load(mould_path)
    assert mould.resolution == 33 and mould.camera.kind == camera and mould.has_normals
    # default view: from +Z towards -Z, +Y up
    np.testing.assert_allclose(mould.camera.cam_to_world[:3, 2], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(mould.camera.cam_to_world[:3, 1], [0, -1, 0], atol=1e-12)
    turned = tmp_path / "out" / "turned.npz"
    assert run_cli(capsys, "encode", sphere_ply, "-o", turned, "--resolution", 16, "--yaw", 90)[0] == 0
    np.testing.assert_allclose(Mould.load(turned).camera.cam_to_world[:3, 2], [-1, 0, 0], atol=1e-12)

    points_path = tmp_path / "out" / "points.ply"
    code, out, err = run_cli(capsys, "decode", mould_path, "--points", "-o", points_path)
    assert code == 0, err
    cloud = trimesh.load(points_path)
    assert len(cloud.vertices) >= 2 * mould.mask.sum()
    # decoding overlays the mesh: every point lies on the sphere of radius 0.4 (icosphere: within 2 cm)
    radius = np.linalg.norm(cloud.vertices, axis=1)
    assert radius.max() < 0.4 + 1e-4 and radius.min() > 0.36

    picture = tmp_path / "out" / "sphere.png"
    code, out, err = run_cli(capsys, "show", mould_path, "-o", picture)
    assert code == 0, err
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [name for name in files_under(tmp_path) if name.endswith(".tmp")]


# -- bad input --------------------------------------------------------------------------------------------
BAD_MESHES = {  # name -> (file content, what the error says)
    "missing.ply": (None, "no such file"),
    "empty.ply": (b"", "empty"),
    "mesh.xyz": (b"0 0 0\n1 0 0\n0 1 0\n", "unsupported mesh format .xyz"),
    "noext": (b"0 0 0\n", "unsupported mesh format (none)"),
    "garbage.ply": (bytes(range(256)) * 3, "cannot read the mesh"),
    "garbage.glb": (b"glTF" + bytes(100), "cannot read the mesh"),
    "truncated.off": (b"OFF\n3 1 0\n0 0 0\n1 0 0\n", "cannot read the mesh"),
    "vertices_only.obj": (b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no faces"),
    "vertices_only.ply": (
        b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        b"end_header\n0 0 0\n1 0 0\n0 1 0\n",
        "no faces",
    ),
    "text.obj": (b"hello, world\n", "no faces"),
    "nan.obj": (b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN"),
    "inf.obj": (b"v inf 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
    "flat_point.obj": (b"v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", "zero area"),
}


@pytest.mark.parametrize("name", sorted(BAD_MESHES))
def test_encode_rejects_bad_mesh_files(capsys, tmp_path, name):
    content, problem = BAD_MESHES[name]
    mesh = tmp_path / name
    if content is not None:
        mesh.write_bytes(content)
    output = tmp_path / "out" / "m.npz"
    code, out, err = run_cli(capsys, "encode", mesh, "-o", output, "--resolution", 16)
    assert_one_line_error(code, err, "encode", str(mesh), problem)
    assert not output.exists()
    assert files_under(tmp_path) == ([name] if content is not None else [])


@pytest.mark.parametrize("resolution", [7, 0, -3, 4097, 100000])
def test_encode_rejects_bad_resolutions(capsys, tmp_path, sphere_ply, resolution):
    output = tmp_path / "m.npz"
    code, out, err = run_cli(capsys, "encode", sphere_ply, "-o", output, "--resolution", resolution)
    assert_one_line_error(code, err, "encode", "--resolution", "8 to 4096", str(resolution))
    assert not output.exists()


def test_encode_accepts_the_resolution_limits(capsys, tmp_path, sphere_ply):
    assert run_cli(capsys, "encode", sphere_ply, "-o", tmp_path / "m.npz", "--resolution", 8)[0] == 0


@pytest.mark.parametrize(
    "options, fragment",
    [
        (["-o", "{tmp}/m.ply"], "must be a .npz"),
        (["-o", "{tmp}/m.npz", "--margin", "0.5"], "--margin"),
        (["-o", "{tmp}/blocker/m.npz"], "cannot write"),
    ],
)
def test_encode_rejects_bad_options_and_outputs(capsys, tmp_path, sphere_ply, options, fragment):
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    code, out, err = run_cli(capsys, "encode", sphere_ply, *[o.format(tmp=tmp_path) for o in options])
    assert_one_line_error(code, err, "encode", fragment)
    assert files_under(tmp_path) == ["blocker", "in", "in/sphere.ply"]


def bad_mould(tmp_path: Path) -> Path:
    """A mould file whose hidden map is one column wider than the others."""
    n = 16
    path = tmp_path / "bad.npz"
    np.savez(
        path,
        schema_version=np.array(1),
        visible=np.zeros((n, n), np.float32),
        hidden=np.zeros((n, n + 1), np.float32),
        mask=np.zeros((n, n), bool),
        camera_kind=np.array("perspective"),
        camera_intrinsics=np.array([20.0, 7.5, 7.5]),
        camera_cam_to_world=np.eye(4),
    )
    return path


@pytest.mark.parametrize(
    "command, extra, output_name",
    [("decode", ["--points"], "points.ply"), ("show", [], "picture.png")],
)
def test_moulds_with_mismatched_shapes_are_rejected(capsys, tmp_path, command, extra, output_name):
    path = bad_mould(tmp_path)
    output = tmp_path / "out" / output_name
    code, out, err = run_cli(capsys, command, path, *extra, "-o", output)
    assert_one_line_error(code, err, command, str(path), "hidden: expected (16, 16)")
    assert files_under(tmp_path) == ["bad.npz"]


@pytest.mark.parametrize("command, extra, output_name", [("decode", ["--points"], "p.ply"), ("show", [], "p.png")])
def test_missing_and_corrupt_moulds_are_rejected(capsys, tmp_path, command, extra, output_name):
    for path, problem in ((tmp_path / "none.npz", "no such file"), (tmp_path / "junk.npz", "not a readable")):
        if path.name == "junk.npz":
            path.write_bytes(b"PK\x03\x04 not really a zip")
        code, out, err = run_cli(capsys, command, path, *extra, "-o", tmp_path / output_name)
        assert_one_line_error(code, err, command, str(path), problem)
    assert not (tmp_path / output_name).exists()


def test_show_rejects_a_non_png_output(capsys, tmp_path, sphere_ply):
    mould_path = tmp_path / "m.npz"
    assert run_cli(capsys, "encode", sphere_ply, "-o", mould_path, "--resolution", 16)[0] == 0
    code, out, err = run_cli(capsys, "show", mould_path, "-o", tmp_path / "m.jpg")
    assert_one_line_error(code, err, "show", "m.jpg", ".png")
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    code, out, err = run_cli(capsys, "show", mould_path, "-o", tmp_path / "blocker" / "x.png")
    assert_one_line_error(code, err, "show", str(tmp_path / "blocker" / "x.png"), "cannot write")
    assert files_under(tmp_path) == ["blocker", "in", "in/sphere.ply", "m.npz"]


# Each command's minimal command line, and the config whose defaults its options must show.
COMMAND_DEFAULTS = [
    (["reconstruct", "x.png", "-o", "out"], "mould.reconstruction.config", "ReconstructConfig"),
    (["decode", "m.npz", "-o", "m.obj"], "mould.recon.decoding", "DecodeConfig"),
    (["encode", "m.ply", "-o", "m.npz"], "mould.commands.encode", "EncodeConfig"),
    (["eval", "--data", "d"], "mould.evaluation.config", "EvalConfig"),
    (["compare", "a.ply", "b.ply"], "mould.commands.compare", "CompareConfig"),
    (["data", "show", "d", "-o", "s.png"], "mould.commands.data", "DataShowConfig"),
    (["model-info"], "mould.commands.model_info", "ModelInfoConfig"),
    (["export-onnx", "-o", "m.onnx"], "mould.commands.export_onnx", "ExportOnnxConfig"),
]


@pytest.mark.parametrize(
    ("argv", "module", "name"), COMMAND_DEFAULTS, ids=[argv[0] for argv, *_ in COMMAND_DEFAULTS]
)
def test_command_defaults_are_the_configs(argv, module, name):
    # Defaults live once, in the config dataclasses: every option named like a field shows its default.
    import dataclasses
    import importlib

    from mould.cli import build_parser

    config = getattr(importlib.import_module(module), name)
    args = vars(build_parser().parse_args(argv))
    compared = 0
    for field in dataclasses.fields(config):
        if field.name in args and field.default is not dataclasses.MISSING:
            assert args[field.name] == field.default, f"{argv[0]} --{field.name.replace('_', '-')}"
            compared += 1
    assert compared >= 1  # the test compares something

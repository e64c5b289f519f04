"""The architecture, kept: imports flow one way between the rooms, and modules stay small.

Rooms, from the bottom up (a room may import its own modules and any room below it, never one beside or
above it; imports inside functions count too):

0. the core: ``mould/*.py`` (camera, framing, the Mould container, encode, decode, files, images, ...);
1. the libraries: ``mould.models``, ``mould.recon``, ``mould.datasets``;
2. the jobs that others build on: ``mould.evaluation``, ``mould.reconstruction``;
3. the jobs on top: ``mould.training``, ``mould.benchmarks``;
4. the command line: ``mould.commands``, ``mould.cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"mould": "mould", "models": "mould.models", "recon": "mould.recon", "datasets": "mould.datasets"}
"""Folder -> the package it installs as (pyproject.toml's package-dir)."""

LAYERS = {
    "core": 0,
    "mould.models": 1,
    "mould.recon": 1,
    "mould.datasets": 1,
    "mould.evaluation": 2,
    "mould.reconstruction": 2,
    "mould.training": 3,
    "mould.benchmarks": 3,
    "mould.commands": 4,
    "mould.cli": 4,
}
MAX_LINES = 420
"""A module past ~400 lines does two jobs (STYLE.md): split it along the job boundary."""


def room(module: str) -> str:
    """The room of a dotted module name (``mould.recon.mesh`` -> ``mould.recon``; core modules -> ``core``)."""
    parts = module.split(".")
    candidate = ".".join(parts[:2])
    return candidate if candidate in LAYERS else "core"


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    found = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            found[".".join((package, *parts)).removesuffix(".__init__")] = path
    return found


def imported(path: Path) -> set[str]:
    """The ``mould...`` modules a file imports, at any depth (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name for name in names if name == "mould" or name.startswith("mould.")}


def test_every_module_is_in_a_room():
    assert len(modules()) > 50  # the discovery works
    for name in modules():
        assert room(name) in LAYERS, name


def test_imports_flow_one_way():
    wrong = []
    for name, path in modules().items():
        here = room(name)
        for target in imported(path):
            there = room(target)
            if there != here and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{name} ({here}) imports {target} ({there})")
    assert not wrong, "\n".join(wrong)


def test_the_core_imports_nothing_heavy_at_module_level():
    # `import mould` must stay light (numpy only): torch, open3d, trimesh, anny load where they are used.
    heavy = ("torch", "open3d", "trimesh", "anny", "pymeshlab", "matplotlib", "scipy")
    wrong = []
    for name, path in modules().items():
        if room(name) != "core":
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                wrong += [f"{name} imports {n}" for n in names if n.split(".")[0] in heavy]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("folder", [*SOURCES, "tests", "tools"])
def test_modules_stay_small(folder):
    long = {
        str(path.relative_to(ROOT)): count
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_layers_catch_a_wrong_import(tmp_path):
    # The checker itself: a core module importing a library, and a library importing a job, are caught.
    assert room("mould.camera") == "core" and room("mould.recon.mesh") == "mould.recon"
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mould.training.loop import train\n")
    assert imported(bad) == {"mould.training.loop"}
    assert LAYERS[room("mould.training.loop")] >= LAYERS[room("mould.recon.mesh")]

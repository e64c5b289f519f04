"""tools/generator_ab.py: interleaved order, the summary's arithmetic, and a run against itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tool_modules import load_tool

TOOL = Path(__file__).resolve().parents[1] / "tools" / "generator_ab.py"


@pytest.fixture(scope="module")
def tool():
    return load_tool("generator_ab")


class FakeWorker:
    """Answers sample i with i * scale seconds and records the order of requests."""

    def __init__(self, name: str, scale: float, calls: list) -> None:
        self.name, self.scale, self.calls = name, scale, calls

    def seconds(self, index: int) -> float:
        self.calls.append((self.name, index))
        return index * self.scale


def test_compare_alternates_which_version_goes_first(tool):
    calls: list = []
    base, new = FakeWorker("base", 0.1, calls), FakeWorker("new", 0.05, calls)
    times_base, times_new = tool.compare(base, new, samples=3, repeats=2)
    assert times_base == [[0.1, 0.2, pytest.approx(0.3)]] * 2
    assert times_new == [[0.05, 0.1, pytest.approx(0.15)]] * 2
    firsts = [calls[k][0] for k in range(0, len(calls), 2)]
    assert firsts == ["base", "new", "base", "new", "base", "new"]  # ABBA: each sample's first swaps
    assert [calls[k][1] for k in range(0, len(calls), 2)] == [1, 2, 3, 1, 2, 3]


def test_summary_takes_each_samples_minimum_over_repeats(tool):
    base = [[0.10, 0.30], [0.20, 0.20]]  # minima 0.10 and 0.20
    new = [[0.05, 0.40], [0.10, 0.10]]  # minima 0.05 and 0.10
    lines = tool.summary(base, new)
    assert lines[0] == "repeat 1: base 200.0 ms, new 225.0 ms a sample, new/base 1.125"
    assert lines[1] == "repeat 2: base 200.0 ms, new 100.0 ms a sample, new/base 0.500"
    assert lines[2] == (
        "minimum over repeats: base 150.0 ms, new 75.0 ms a sample, new/base 0.500 (median per sample 0.500)"
    )


def test_the_generator_against_itself(tmp_path):
    run = subprocess.run(
        [sys.executable, str(TOOL), "--base", sys.executable, "--new", sys.executable, "--samples", "2",
         "--repeats", "1", "--resolution", "32"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("repeat 1: base ") and "new/base" in lines[1]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_interpreter_and_bad_options_fail_in_one_line(tmp_path):
    missing = str(tmp_path / "no-python")
    run = subprocess.run(
        [sys.executable, str(TOOL), "--base", missing, "--new", sys.executable, "--samples", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "no-python" in run.stderr
    run = subprocess.run(
        [sys.executable, str(TOOL), "--base", sys.executable, "--new", sys.executable, "--samples", "0"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 2 and "--samples" in run.stderr

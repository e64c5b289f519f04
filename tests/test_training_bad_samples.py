"""Training over bad samples never hangs (issue #15): bad samples are skipped and counted, in the data
workers as in the main process, and a worker that raises or dies stops the run with one line and a
checkpoint.

Runs with workers are subprocesses with a timeout, so that a regression fails instead of hanging the suite;
the timeout is a guard, not a measurement (a run takes ~10 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bad_samples import add_bad_samples
from conftest import TINY, make_samples, metrics

from mould.cli import main

GUARD_SECONDS = 300


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """6 good 64² samples and one bad sample of each kind (tests/bad_samples.py)."""
    root = tmp_path_factory.mktemp("bad")
    train = make_samples(root / "train", 6)
    other = make_samples(root / "other", 1, seed=3, resolution=128)
    add_bad_samples(train, "s0000", other / "s0000")
    return train


def _options(folder: Path, run: Path, workers: int, steps: int = 3) -> list[str]:
    options = [*TINY, "--workers", str(workers), "--batch-size", "4", "--steps", str(steps)]
    return ["-q", "train", *options, "--ckpt-every", "1000", "--data", str(folder), "--out", str(run)]


def _run(arguments: list[str], script: str | None = None, tmp_path: Path | None = None):
    if script is None:
        command = [sys.executable, "-m", "mould.cli", *arguments]
    else:
        (tmp_path / "patched.py").write_text(script)
        command = [sys.executable, str(tmp_path / "patched.py"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=GUARD_SECONDS)


def _skipped(run: Path) -> float:
    return sum(float(row["value"]) for row in metrics(run) if row["tag"] == "train/skipped_samples")


def test_workers_skip_and_count_every_kind_of_bad_sample(tmp_path, folder):
    """A 128² sample among 64² ones hung the run (workers) or crashed collation (no workers)."""
    run = tmp_path / "run"
    result = _run(_options(folder, run, workers=2))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 3
    # 11 of 17 samples are bad: 3 batches of 4 can hardly avoid them all (each batch steps over some).
    assert _skipped(run) > 0


def test_the_dataset_skips_and_names_every_kind_of_bad_sample(folder):
    """In the main process too (--workers 0 died of a traceback in collation): every record is 64²."""
    from mould.datasets.folder import SampleFolder
    from mould.datasets.records import RECORD_KEYS, check_record, record_shapes

    assert set(record_shapes(64)) == set(RECORD_KEYS)  # the check knows every key of the schema
    dataset = SampleFolder(folder)
    assert dataset.resolution == 64
    for index in range(len(dataset)):
        check_record(dataset[index], 64)
    assert sorted(dataset.bad) == sorted(name for name in dataset.names if name.startswith("bad_"))
    assert len(dataset.bad) == 11 and dataset.skipped > 0
    assert all(reason.startswith(str(folder)) and "\n" not in reason for reason in dataset.bad.values())


PATCH = """
import os, signal, sys
import torch
from mould.datasets.folder import SampleFolder

original = SampleFolder.load_mould


def load_mould(self, index):
    if torch.utils.data.get_worker_info() is not None and self.names[index] == "s0003":
        {action}
    return original(self, index)


SampleFolder.load_mould = load_mould
from mould.cli import main

sys.exit(main(sys.argv[1:]))
"""

FAILURES = {  # what a worker does on loading s0003; what the one line says
    "is killed": ("os.kill(os.getpid(), signal.SIGKILL)", "DataLoader worker"),  # killed, or exited
    "raises": ("raise RuntimeError('a bug in a worker')", "RuntimeError: a bug in a worker"),
}


def _assert_failed_with_a_checkpoint(run: Path, stderr: str, says: str) -> None:
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("mould train: error: the training data failed: ") and says in last, stderr
    assert "with a checkpoint; --resume continues" in last and "Traceback" not in stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and info["step"] < 50
    latest = (run / "checkpoints" / "latest").read_text().strip()
    assert latest == f"step_{info['step']:06d}" and f"stopped at step {info['step']} " in last


@pytest.mark.parametrize("case", [pytest.param("is killed"), pytest.param("raises", marks=pytest.mark.slow)])
def test_a_failing_worker_stops_the_run_in_one_line_with_a_checkpoint(tmp_path, folder, case):
    """A worker's exception (or death) hung the run: the main process never exited."""
    action, says = FAILURES[case]
    run = tmp_path / "run"
    result = _run(_options(folder, run, workers=1, steps=50), PATCH.format(action=action), tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    _assert_failed_with_a_checkpoint(run, result.stderr, says)


def test_a_dataset_error_in_the_main_process_is_one_line_with_a_checkpoint(tmp_path, monkeypatch, capsys):
    from mould.datasets.folder import SampleFolder

    original = SampleFolder.load_mould

    def load_mould(self, index):
        if self.names[index] == "s0003":
            raise RuntimeError("a bug in a worker")
        return original(self, index)

    monkeypatch.setattr(SampleFolder, "load_mould", load_mould)
    data = make_samples(tmp_path / "data", 4)
    run = tmp_path / "run"
    assert main(_options(data, run, workers=0, steps=50)) == 2
    _assert_failed_with_a_checkpoint(run, capsys.readouterr().err, FAILURES["raises"][1].split(": ")[1])

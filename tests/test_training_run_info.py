"""run.json records the git commit without writing into the user's checkout (issue #15)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mould.training.run_info import _git_commit


def _git(folder: Path, *arguments: str) -> str:
    command = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A git checkout whose tracked file's timestamp changed since the index saw it: a plain
    ``git status`` rewrites the index (under ``index.lock``) to refresh it."""
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not installed")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    index = tmp_path / ".git" / "index"
    os.utime(index, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # an old index
    os.utime(tmp_path / "a.py", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))  # a newer stat
    return tmp_path


def test_the_commit_is_read_without_touching_the_index(checkout):
    index = checkout / ".git" / "index"
    before = index.stat().st_mtime_ns, index.read_bytes()
    commit = _git_commit(checkout)
    assert commit == _git(checkout, "rev-parse", "HEAD").strip()  # same content: not "(modified)"
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
    assert not (checkout / ".git" / "index.lock").exists()
    (checkout / "a.py").write_text("x = 2\n")
    assert _git_commit(checkout).endswith(" (modified)")
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


def test_a_plain_git_status_would_have_rewritten_it(checkout):
    """The test above can fail: without --no-optional-locks, git status refreshes the index."""
    index = checkout / ".git" / "index"
    before = index.stat().st_mtime_ns
    _git(checkout, "status", "--porcelain", "--untracked-files=no")
    assert index.stat().st_mtime_ns != before


def test_no_checkout_gives_no_commit(tmp_path):
    assert _git_commit(tmp_path) is None

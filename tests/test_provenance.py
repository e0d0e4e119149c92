"""git_revision: the commit of a checkout, or of the image when there is no checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from churn_mlops.provenance import SOURCE_COMMIT_VARIABLE, git_revision


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c")
    return tmp_path


def test_a_clean_checkout_gives_its_head(repo: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SOURCE_COMMIT_VARIABLE, "from-the-image")  # git wins in a checkout
    assert git_revision(repo) == _git(repo, "rev-parse", "HEAD")


def test_changed_tracked_files_mark_the_commit_dirty(repo: Path):
    (repo / "code.py").write_text("x = 2\n")
    (repo / "untracked.txt").write_text("not part of the source\n")
    assert git_revision(repo) == _git(repo, "rev-parse", "HEAD") + "+dirty"


def test_without_a_checkout_the_image_commit_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv(SOURCE_COMMIT_VARIABLE, " 0123abc ")
    assert git_revision(tmp_path) == "0123abc"
    monkeypatch.delenv(SOURCE_COMMIT_VARIABLE)
    assert git_revision(tmp_path) == "unknown"

"""Fixtures of the export tests: one small project, run up to a champion, exported once.

Building it costs a few minutes (simulation -> evaluation on small data, then the export with
its parity gate), so it is built once per test session and shared by the end-to-end and the
container tests; tests that change a bundle work on copies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from churn_mlops.progress import PROGRESS_ENV
from tests.conftest import PROJECT_ROOT, kedro_env
from tests.notebooks.small_project import build_small_project

#: Third-party wheels are kept between test sessions (the export's own cache, git-ignored).
WHEEL_CACHE = PROJECT_ROOT / "dist" / ".wheel-cache"


@dataclass(frozen=True)
class ExportedProject:
    """A small project with a champion and its exported bundle."""

    root: Path
    bundle: Path
    source_dir: Path
    export_log: str

    def manifest(self) -> dict:
        """The bundle's ``manifest.json``."""
        return json.loads((self.bundle / "manifest.json").read_text(encoding="utf-8"))


def snapshot_source(destination: Path) -> Path:
    """Copy what an export builds from (``pyproject.toml``, ``README.md``, ``src/``,
    ``deploy/k8s``, ``deploy/docker/serving``) so that edits to the checkout during a test
    session cannot change the project wheel between two exports that must be identical."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    destination.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, destination / name)
    shutil.copytree(PROJECT_ROOT / "src", destination / "src", ignore=ignore)
    for tree in ("deploy/k8s", "deploy/docker/serving"):
        shutil.copytree(PROJECT_ROOT / tree, destination / tree, ignore=ignore)
    return destination


def export_env(project_dir: Path, source_dir: Path) -> dict[str, str]:
    """``kedro_env`` plus the shared wheel cache and the source snapshot."""
    return {
        **kedro_env(project_dir),
        "CHURN_WHEEL_CACHE_DIR": str(WHEEL_CACHE),
        "CHURN_PROJECT_SOURCE_DIR": str(source_dir),
    }


def run_export(
    project_dir: Path,
    source_dir: Path,
    *extra: str,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``kedro run --pipeline export`` in ``project_dir``, building from ``source_dir``."""
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run", "--pipeline", "export", *extra],
        cwd=project_dir,
        env={**export_env(project_dir, source_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"kedro run --pipeline export failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def exported_project(tmp_path_factory: pytest.TempPathFactory) -> ExportedProject:
    """Small project -> champion v1 -> ``dist/churn_model-v1`` (built once per session)."""
    base = tmp_path_factory.mktemp("export")
    source = snapshot_source(base / "source")
    root = base / "project"
    build_small_project(root)
    proc = run_export(root, source, env={PROGRESS_ENV: "1"})  # as on a terminal
    bundle = root / "dist" / "churn_model-v1"
    assert bundle.is_dir(), f"no bundle in {root / 'dist'}: {sorted((root / 'dist').iterdir())}"
    return ExportedProject(
        root=root, bundle=bundle, source_dir=source, export_log=proc.stdout + proc.stderr
    )

"""Shared test fixtures: telemetry off, quiet logging, and a disposable copy of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Set before anything imports kedro: no telemetry, no rich tracebacks that swallow errors.
os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(PROJECT_ROOT / "conf" / "logging.yml"))

DATA_LAYERS = (
    "01_raw",
    "02_intermediate",
    "03_primary",
    "04_feature",
    "05_model_input",
    "06_models",
    "07_model_output",
    "08_reporting",
)


@pytest.fixture(autouse=True)
def _no_mlflow_run_outlives_its_test() -> Iterator[None]:
    """End any MLflow run a test left active (an in-process Kedro session that failed before
    kedro-mlflow's error hook ran): the next test would otherwise log into it, and
    kedro-mlflow would ignore that test's mlflow.yml."""
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:
            mlflow.end_run()


def committed_feature_names() -> list[str]:
    """The feature contract's names, in order, as conf/base/parameters_feature_engineering.yml
    lists them: tests read the contract from configuration, so adding a feature (docs/features.md)
    needs no test edit."""
    import yaml

    path = PROJECT_ROOT / "conf" / "base" / "parameters_feature_engineering.yml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))["feature_engineering"]
    return [feature["name"] for feature in params["features"]]


def make_project_copy(destination: Path) -> Path:
    """Copy the project's configuration into ``destination`` with empty data layers.

    The package itself is installed (editable), so only ``conf/`` and ``pyproject.toml`` are
    needed for Kedro to bootstrap the copy; outputs land in the copy, never in the checkout.
    """
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        PROJECT_ROOT / "conf",
        destination / "conf",
        ignore=shutil.ignore_patterns("credentials*.yml"),
        dirs_exist_ok=True,
    )
    shutil.copy2(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    # The Feast feature repository (configuration only; its registry lands in data/04_feature).
    shutil.copytree(PROJECT_ROOT / "feature_repo", destination / "feature_repo", dirs_exist_ok=True)
    for layer in DATA_LAYERS:
        (destination / "data" / layer).mkdir(parents=True, exist_ok=True)
    # Kedro checks that the configured source folder exists; the code comes from the install.
    (destination / "src").mkdir(exist_ok=True)
    return destination


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A throw-away copy of the project (conf + empty data layers) in a temporary folder."""
    return make_project_copy(tmp_path / "project")


def kedro_env(project_dir: Path) -> dict[str, str]:
    """Environment for a ``kedro`` subprocess run inside ``project_dir``."""
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project_dir / 'mlflow.db'}"
    env["KEDRO_LOGGING_CONFIG"] = str(PROJECT_ROOT / "conf" / "logging.yml")
    return env


@pytest.fixture
def run_kedro() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the ``kedro`` CLI of this venv in a project folder and return the completed process."""

    def _run(project_dir: Path, *args: str, check: bool = True, timeout: float = 900):
        kedro = Path(sys.executable).with_name("kedro")
        proc = subprocess.run(
            [str(kedro), *args],
            cwd=project_dir,
            env=kedro_env(project_dir),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kedro {' '.join(args)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        return proc

    return _run

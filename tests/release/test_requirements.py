"""Pinning the serving dependency closure from the installed environment."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from churn_mlops.release.errors import RequirementsError
from churn_mlops.release.requirements import (
    Pin,
    project_extra_requirements,
    render_requirements,
    resolve_pins,
)
from tests.conftest import PROJECT_ROOT


def test_closure_follows_extras_and_pins_installed_versions():
    pins = {p.name: p for p in resolve_pins(["uvicorn[standard]", "scikit-learn"])}
    # uvicorn's `standard` extra and scikit-learn's own requirements are followed.
    for name in (
        "uvicorn",
        "uvloop",
        "httptools",
        "h11",
        "scikit-learn",
        "scipy",
        "numpy",
        "joblib",
        "threadpoolctl",
    ):
        assert pins[name].version == version(name), name
    # Markers are evaluated: a Windows-only or Python<3.11-only requirement is not pinned.
    assert "colorama" not in pins
    assert "kedro" not in pins and "mlflow" not in pins


def test_substitution_keeps_the_version_and_exclusion_drops_the_gpu_library():
    pins = {
        p.name: p
        for p in resolve_pins(
            ["xgboost"], substitutions={"xgboost": "xgboost-cpu"}, exclude=["nvidia-nccl-cu12"]
        )
    }
    assert pins["xgboost-cpu"] == Pin("xgboost-cpu", version("xgboost"), "xgboost")
    assert "xgboost" not in pins
    assert not [name for name in pins if name.startswith("nvidia")]


def test_serving_extra_is_read_from_pyproject():
    requirements = project_extra_requirements(PROJECT_ROOT / "pyproject.toml", ["serving"])
    assert any(r.startswith("fastapi") for r in requirements)
    with pytest.raises(RequirementsError, match=r"no optional-dependency group 'servng'"):
        project_extra_requirements(PROJECT_ROOT / "pyproject.toml", ["servng"])


def test_missing_or_conflicting_distribution_is_named():
    with pytest.raises(RequirementsError, match=r"not-a-real-dist .*is not installed"):
        resolve_pins(["not-a-real-dist"])
    with pytest.raises(RequirementsError, match=r"needs numpy<1 but numpy .* is installed"):
        resolve_pins(["numpy<1"])


def test_requirements_file_is_hash_pinned(tmp_path: Path):
    pins = [Pin("numpy", "2.0.0", "numpy"), Pin("xgboost-cpu", "3.2.0", "xgboost")]
    text = render_requirements(pins, {"numpy": "a" * 64, "xgboost-cpu": "b" * 64}, "hello\nworld")
    assert text.splitlines() == [
        "# hello",
        "# world",
        "numpy==2.0.0 \\",
        f"    --hash=sha256:{'a' * 64}",
        "xgboost-cpu==3.2.0 \\",
        f"    --hash=sha256:{'b' * 64}",
    ]
    with pytest.raises(RequirementsError, match="no wheel for xgboost-cpu==3.2.0"):
        render_requirements(pins, {"numpy": "a" * 64}, "")

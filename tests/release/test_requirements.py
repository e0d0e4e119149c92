"""Pinning a dependency closure to the installed versions with ``uv pip compile``.

Real uv, real wheels: the closures are resolved against the project's wheel cache (what an
export uses; ``pip download`` fills what it lacks) and copied into a temporary wheelhouse.
"""

from __future__ import annotations

import hashlib
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from churn_mlops.release.errors import RequirementsError
from churn_mlops.release.requirements import (
    Pin,
    compile_requirements,
    pins_of,
    project_extra_requirements,
    resolution_inputs,
)
from churn_mlops.release.wheelhouse import fill_wheelhouse
from tests.conftest import PROJECT_ROOT
from tests.pipelines.export.conftest import WHEEL_CACHE


def _fill(tmp_path: Path, roots: list[str], **options) -> tuple[dict[str, Pin], str]:
    inputs = resolution_inputs(roots, **options)
    pins, text = fill_wheelhouse(inputs, tmp_path / "wheelhouse", cache_dir=WHEEL_CACHE)
    return {p.name: p for p in pins}, text


def test_closure_follows_extras_and_pins_installed_versions(tmp_path: Path):
    pins, _ = _fill(tmp_path, ["uvicorn[standard]", "scikit-learn"])
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


def test_substitution_keeps_the_version_and_exclusion_drops_the_gpu_library(tmp_path: Path):
    options = {"substitutions": {"xgboost": "xgboost-cpu"}, "exclude": ["nvidia-nccl-cu12"]}
    inputs = resolution_inputs(["xgboost>=2"], **options)
    assert inputs.roots == ["xgboost-cpu>=2"]
    assert f"xgboost-cpu=={version('xgboost')}" in inputs.constraints
    pins, _ = _fill(tmp_path, ["xgboost"], **options)
    assert pins["xgboost-cpu"] == Pin("xgboost-cpu", version("xgboost"), "xgboost")
    assert "xgboost" not in pins
    assert not [name for name in pins if name.startswith("nvidia")]


def test_an_excluded_distribution_is_dropped_where_it_is_needed_too(tmp_path: Path):
    pins, text = _fill(tmp_path, ["uvicorn[standard]", "redis"], exclude=["uvloop", "redis"])
    assert "uvicorn" in pins and "httptools" in pins
    assert "uvloop" not in pins and "redis" not in pins
    assert "uvloop" not in text


def test_requirements_are_hash_pinned_to_the_wheelhouse_files(tmp_path: Path):
    pins, text = _fill(tmp_path, ["scikit-learn"])
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", text, flags=re.M))
    assert pinned == {name: pin.version for name, pin in pins.items()}
    hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", text))
    wheels = list((tmp_path / "wheelhouse").glob("*.whl"))
    assert len(wheels) == len(pins) == len(hashes)
    assert hashes == {hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}


def test_serving_extra_is_read_from_pyproject():
    requirements = project_extra_requirements(PROJECT_ROOT / "pyproject.toml", ["serving"])
    assert any(r.startswith("fastapi") for r in requirements)
    with pytest.raises(RequirementsError, match=r"no optional-dependency group 'servng'"):
        project_extra_requirements(PROJECT_ROOT / "pyproject.toml", ["servng"])


def test_missing_or_conflicting_distribution_is_named(tmp_path: Path):
    with pytest.raises(RequirementsError, match=r"not-a-real-dist .*is not installed"):
        resolution_inputs(["not-a-real-dist"])
    inputs = resolution_inputs([])
    with pytest.raises(RequirementsError, match=r"not-a-real-dist is not installed"):
        pins_of("not-a-real-dist==1.0\n", inputs)
    with pytest.raises(RequirementsError, match=r"numpy==0\.1 .* but numpy \S+ is installed"):
        pins_of("numpy==0.1\n", inputs)
    # A root the installed version breaks has no solution: uv's message is passed on.
    (tmp_path / "empty").mkdir()
    with pytest.raises(RequirementsError, match=r"(?s)no solution .*numpy<1 and numpy=="):
        compile_requirements(resolution_inputs(["numpy<1"]), tmp_path / "empty")

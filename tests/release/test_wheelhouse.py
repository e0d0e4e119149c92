"""Wheelhouse: wheel lookup in the cache and the reproducible project wheel."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from churn_mlops.release.errors import WheelhouseError
from churn_mlops.release.requirements import Pin
from churn_mlops.release.wheelhouse import (
    build_project_wheel,
    fetch_wheels,
    find_wheel,
    source_date_epoch,
)
from tests.conftest import PROJECT_ROOT


def _touch(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"not really a wheel")
    return path


def test_find_wheel_matches_name_version_and_this_interpreter(tmp_path: Path):
    _touch(tmp_path, "numpy-2.0.0-cp27-cp27mu-manylinux1_x86_64.whl")  # wrong interpreter
    _touch(tmp_path, "numpy-2.0.1-py3-none-any.whl")  # wrong version
    good = _touch(tmp_path, "numpy-2.0.0-py3-none-any.whl")
    cpu = _touch(tmp_path, "xgboost_cpu-3.2.0-py3-none-any.whl")
    assert find_wheel(tmp_path, Pin("numpy", "2.0.0", "numpy")) == good
    assert find_wheel(tmp_path, Pin("xgboost-cpu", "3.2.0", "xgboost")) == cpu
    assert find_wheel(tmp_path, Pin("pandas", "2.0.0", "pandas")) is None


def test_cached_wheels_are_copied_without_the_network(tmp_path: Path):
    cache = tmp_path / "cache"
    _touch(cache, "six-1.17.0-py2.py3-none-any.whl")
    found = fetch_wheels(
        [Pin("six", "1.17.0", "six")],
        tmp_path / "house",
        cache_dir=cache,
        pip_args=["--index-url", "http://127.0.0.1:9/unreachable"],  # would fail if used
    )
    assert found == {"six": tmp_path / "house" / "six-1.17.0-py2.py3-none-any.whl"}


def test_a_wheel_that_cannot_be_fetched_names_the_pin(tmp_path: Path):
    with pytest.raises(WheelhouseError, match=r"pip download of six==0\.0\.1 failed"):
        fetch_wheels(
            [Pin("six", "0.0.1", "six")],
            tmp_path / "house",
            cache_dir=tmp_path / "cache",
            pip_args=["--no-index", "--find-links", str(tmp_path / "cache")],
            timeout_s=120,
        )


@pytest.mark.slow
def test_project_wheel_is_byte_identical_when_built_twice(tmp_path: Path):
    epoch = source_date_epoch(PROJECT_ROOT)
    first = build_project_wheel(PROJECT_ROOT, tmp_path / "a", epoch=epoch)
    second = build_project_wheel(PROJECT_ROOT, tmp_path / "b", epoch=epoch)
    assert first.name == second.name and first.name.startswith("churn_mlops-")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    assert digest[0] == digest[1]
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        stamps = {info.date_time for info in wheel.infolist()}
    assert "churn_mlops/serving/__main__.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert len(stamps) == 1  # every entry carries SOURCE_DATE_EPOCH, not a build time


def test_a_folder_without_a_project_is_refused(tmp_path: Path):
    with pytest.raises(WheelhouseError, match="is not a project checkout"):
        build_project_wheel(tmp_path, tmp_path / "out", epoch=315532800)

"""ServingBundleDataset: a failed export never leaves half a bundle nor touches the previous one.

The full write with the parity gate runs in tests/pipelines/export/test_end_to_end.py; here
the failures that happen before it, which must clean up just the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError
from sklearn.dummy import DummyClassifier

from churn_mlops.datasets.serving_bundle import ServingBundleDataset
from churn_mlops.release.bundle import file_checksums
from churn_mlops.release.errors import ExportConfigError, RequirementsError


def _pipeline(estimator=None):
    """The served object's shape (``preprocess`` + ``model``), fitted on one column ``x``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    preprocess = ColumnTransformer([("numeric", StandardScaler(), ["x"])])
    model = estimator if estimator is not None else LogisticRegression()
    return Pipeline([("preprocess", preprocess), ("model", model)]).fit(frame, [0, 0, 1, 1])


def _payload(bundle_dir: Path, **overrides) -> dict:
    payload = {
        "bundle_dir": str(bundle_dir),
        "model": _pipeline(),
        "model_version": "7",
        "texts": {"model_metadata.json": "{}\n", "Dockerfile": "FROM scratch\n"},
        "golden_sample": pd.DataFrame({"x": [1.0], "expected_probability": [0.5]}),
        "feature_names": ["x"],
        "parity_tolerance": 1e-6,
        "requirements": {
            "extras": [],
            "distributions": ["not-a-real-distribution"],
            "substitutions": {},
            "exclude": [],
        },
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "image": "churn-serving:m-v7",
        "manifest": {"model": {"registry_name": "m"}},
    }
    return {**payload, **overrides}


@pytest.fixture
def previous_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "dist" / "m-v7"
    (bundle / "model").mkdir(parents=True)
    (bundle / "model" / "model.onnx").write_bytes(b"the previous export")
    (bundle / "manifest.json").write_text('{"files": {}}')
    return bundle


@pytest.fixture
def dataset(tmp_path: Path) -> ServingBundleDataset:
    return ServingBundleDataset(wheel_cache_dir=str(tmp_path / "cache"))


def test_a_failure_leaves_the_previous_bundle_and_no_staging_folder(dataset, previous_bundle):
    before = file_checksums(previous_bundle, skip=frozenset())
    with pytest.raises(DatasetError) as failure:
        dataset.save(_payload(previous_bundle))
    assert isinstance(failure.value.__cause__, RequirementsError)
    assert "not-a-real-distribution" in str(failure.value.__cause__)
    assert file_checksums(previous_bundle, skip=frozenset()) == before
    assert sorted(p.name for p in previous_bundle.parent.iterdir()) == ["m-v7"]


def test_a_model_without_onnx_conversion_fails_the_export_by_name(dataset, previous_bundle):
    from churn_mlops.release.onnx_model import OnnxConversionError

    before = file_checksums(previous_bundle, skip=frozenset())
    with pytest.raises(DatasetError) as failure:
        dataset.save(_payload(previous_bundle, model=_pipeline(DummyClassifier())))
    assert isinstance(failure.value.__cause__, OnnxConversionError)
    assert "DummyClassifier has no ONNX conversion" in str(failure.value.__cause__)
    assert file_checksums(previous_bundle, skip=frozenset()) == before


def test_a_failed_first_export_leaves_nothing(dataset, tmp_path):
    target = tmp_path / "dist" / "m-v7"
    with pytest.raises(DatasetError):
        dataset.save(_payload(target))
    assert list((tmp_path / "dist").iterdir()) == []


def test_an_export_on_another_python_than_the_image_is_refused(dataset, tmp_path):
    with pytest.raises(DatasetError) as failure:
        dataset.save(_payload(tmp_path / "dist" / "m-v7", python_version="3.99"))
    assert isinstance(failure.value.__cause__, ExportConfigError)
    assert "python_version is '3.99' but this export runs on Python" in str(failure.value)
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_an_incomplete_payload_is_refused(dataset, tmp_path):
    with pytest.raises(DatasetError, match=r"lacks \['golden_sample'\]"):
        dataset.save({k: v for k, v in _payload(tmp_path / "b").items() if k != "golden_sample"})


def test_a_source_folder_that_is_no_checkout_is_named(tmp_path):
    dataset = ServingBundleDataset(
        wheel_cache_dir=str(tmp_path / "cache"), project_source_dir=str(tmp_path / "nowhere")
    )
    with pytest.raises(DatasetError, match="nowhere is not a project checkout") as failure:
        dataset.save(_payload(tmp_path / "dist" / "m-v7"))
    assert isinstance(failure.value.__cause__, ExportConfigError)
    assert "CHURN_PROJECT_SOURCE_DIR" in str(failure.value)
    assert not (tmp_path / "dist").exists()


def test_unknown_parity_option_is_named(tmp_path):
    with pytest.raises(ExportConfigError, match=r"unknown parity option\(s\) \['rows'\]"):
        ServingBundleDataset(wheel_cache_dir=str(tmp_path), parity={"rows": 5})


def test_load_before_any_save_is_an_error(dataset):
    with pytest.raises(DatasetError, match="no serving bundle has been written"):
        dataset.load()

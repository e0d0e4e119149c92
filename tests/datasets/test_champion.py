"""The one champion dataset, on a real MLflow store: alias, files, ``if_missing``, read-only."""

from __future__ import annotations

from datetime import datetime, timezone

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError

from churn_mlops.datasets import MlflowChampionDataset, MlflowModelRegistrationDataset
from churn_mlops.datasets.champion import VERSION_FILES
from churn_mlops.registry import ChampionRegistry
from tests.datasets.test_model_registry import _payload


def _register(tmp_path, model_name, model, rows, *, promote: bool) -> dict:
    dataset = MlflowModelRegistrationDataset(
        model_name=model_name,
        metadata_filepath=str(tmp_path / "model_metadata.json"),
        model_card_filepath=str(tmp_path / "model_card.md"),
    )
    with mlflow.start_run():
        dataset.save(_payload(model, rows, promote=promote, champion=None))
    return dataset.load()


def test_champion_is_loaded_with_its_files_and_lineage(tmp_path, model_name, small_model):
    model, rows = small_model
    outcome = _register(tmp_path, model_name, model, rows, promote=True)

    champion = MlflowChampionDataset(
        model_name=model_name, required_files=list(VERSION_FILES)
    ).load()

    assert champion["version"] == outcome["version"] == "1"
    assert champion["run_id"] == outcome["run_id"]
    assert champion["model_uri"] == f"models:/{model_name}/1"
    assert "champion" in champion["aliases"]
    assert champion["tags"]["data_fingerprint"] == "abc123"
    assert champion["model_metadata"]["model_version"] == "1"
    assert champion["model_metadata"]["run_id"] == outcome["run_id"]
    assert champion["model_card"] == f"# card v1 run {outcome['run_id']}"
    assert champion["reference_profile"] == {"features": {}, "score": {}}
    registered = _payload(model, rows, promote=True, champion=None)["golden_sample"]
    pd.testing.assert_frame_equal(champion["golden_sample"], registered)
    assert (datetime.now(timezone.utc) - champion["registered_at"]).total_seconds() < 600
    np.testing.assert_allclose(
        champion["model"].predict_proba(rows)[:, 1], model.predict_proba(rows)[:, 1], atol=1e-12
    )


def test_the_alias_is_resolved_once_and_follows_promotion(tmp_path, model_name, small_model):
    model, rows = small_model
    _register(tmp_path, model_name, model, rows, promote=True)
    _register(tmp_path, model_name, model, rows, promote=False)  # v2: challenger only
    dataset = MlflowChampionDataset(model_name=model_name)
    assert dataset.load()["version"] == "1"
    ChampionRegistry(model_name).promote("2", reason="test")
    again = dataset.load()
    assert again["version"] == "2" and again["model_metadata"]["model_version"] == "2"


def test_if_missing_error_names_the_model_and_alias(tmp_path, model_name, small_model):
    dataset = MlflowChampionDataset(model_name=model_name)
    with pytest.raises(DatasetError, match=rf"'{model_name}' has no version with alias 'champion'"):
        dataset.load()  # no registered model at all
    model, rows = small_model
    _register(tmp_path, model_name, model, rows, promote=False)  # challenger only
    with pytest.raises(DatasetError, match="kedro models promote"):
        dataset.load()


def test_if_missing_none_loads_none(model_name):
    assert MlflowChampionDataset(model_name=model_name, if_missing="none").load() is None


def _register_model_only(model_name, model) -> None:
    """A champion logged and registered without the evaluation's files (not by the pipeline)."""
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="pickle", pip_requirements=["scikit-learn"]
        )
    version = mlflow.register_model(info.model_uri, model_name).version
    ChampionRegistry(model_name).promote(str(version), reason="test")


def test_a_missing_required_file_names_the_version_and_file(model_name, small_model):
    _register_model_only(model_name, small_model[0])
    dataset = MlflowChampionDataset(model_name=model_name, required_files=["golden_sample.parquet"])
    with pytest.raises(DatasetError, match=rf"{model_name} v1 .* has no golden_sample.parquet"):
        dataset.load()


def test_files_a_version_lacks_and_does_not_require_load_as_none(model_name, small_model):
    _register_model_only(model_name, small_model[0])
    champion = MlflowChampionDataset(model_name=model_name, required_files=[]).load()
    assert champion["golden_sample"] is None and champion["model_metadata"] is None


def test_bad_options_are_refused_when_the_catalog_is_built(model_name):
    expected = r"if_missing='skip'; expected one of \['error', 'none'\]"
    with pytest.raises(DatasetError, match=expected):
        MlflowChampionDataset(model_name=model_name, if_missing="skip")
    with pytest.raises(DatasetError, match=r"required_files \['model.pkl'\]"):
        MlflowChampionDataset(model_name=model_name, required_files=["model.pkl"])


def test_catalog_entry_and_read_only(model_name):
    catalog = DataCatalog.from_config(
        {
            "champion": {
                "type": "churn_mlops.datasets.champion.MlflowChampionDataset",
                "model_name": model_name,
                "alias": "champion",
                "if_missing": "none",
            }
        }
    )
    assert catalog.load("champion") is None
    with pytest.raises(DatasetError, match="read-only"):
        catalog.save("champion", {"version": "1"})

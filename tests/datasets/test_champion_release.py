"""The export's view of the registry: the champion with its files, on a real MLflow store."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from kedro.io import DatasetError

from churn_mlops.datasets import MlflowModelRegistrationDataset
from churn_mlops.datasets.champion_release import MlflowChampionReleaseDataset
from tests.datasets.test_model_registry import _payload

# MLflow-backed registry round trips: seconds each (make test-fast leaves them out).
pytestmark = pytest.mark.slow


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

    release = MlflowChampionReleaseDataset(model_name=model_name).load()

    assert release["version"] == outcome["version"] == "1"
    assert release["run_id"] == outcome["run_id"]
    assert release["model_uri"] == f"models:/{model_name}/1"
    assert "champion" in release["aliases"]
    assert release["tags"]["data_fingerprint"] == "abc123"
    assert release["model_metadata"]["model_version"] == "1"
    assert release["model_metadata"]["run_id"] == outcome["run_id"]
    assert release["model_card"] == f"# card v1 run {outcome['run_id']}"
    assert release["reference_profile"] == {"features": {}, "score": {}}
    assert release["golden_sample"] is None
    np.testing.assert_allclose(
        release["model"].predict_proba(rows)[:, 1], model.predict_proba(rows)[:, 1], atol=1e-12
    )


def test_no_champion_is_a_clear_error(tmp_path, model_name, small_model):
    dataset = MlflowChampionReleaseDataset(model_name=model_name)
    with pytest.raises(DatasetError, match=rf"{model_name}' has no 'champion' alias"):
        dataset.load()
    model, rows = small_model
    _register(tmp_path, model_name, model, rows, promote=False)  # challenger only
    with pytest.raises(DatasetError, match="nothing to export"):
        dataset.load()


def test_release_is_read_only(model_name):
    with pytest.raises(DatasetError, match="read-only"):
        MlflowChampionReleaseDataset(model_name=model_name).save({"version": "1"})

"""The registration and champion datasets against a real MLflow SQLite store."""

from __future__ import annotations

import json

import mlflow
import pytest
from kedro.io import DatasetError
from mlflow import MlflowClient

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.datasets import MlflowModelRegistrationDataset
from churn_mlops.registry import RUN_ID_TOKEN, VERSION_TOKEN, ChampionRegistry


def _payload(model, rows, *, promote: bool, champion: str | None, reason: str = "ok"):
    return {
        "model": model,
        "input_example": rows.head(3).reset_index(drop=True),
        "logging": {"serialization_format": "skops", "skops_trusted_types": []},
        "tags": {
            "data_fingerprint": "abc123",
            "features": ",".join(rows.columns),
            "test.pr_auc": "0.400000",
        },
        "metadata": {
            "model_name": "m",
            "model_version": None,
            "run_id": None,
            "threshold": 0.3,
            "metrics": {"pr_auc": 0.4},
            "features": [{"name": c, "kind": "numeric"} for c in rows.columns],
        },
        "model_card": f"# card v{VERSION_TOKEN} run {RUN_ID_TOKEN}",
        "reference_profile": {"features": {}, "score": {}},
        "golden_sample": rows.head(5).assign(
            **{EXPECTED_COLUMN: model.predict_proba(rows.head(5))[:, 1]}
        ),
        "decision": {"promote": promote, "reason": reason, "champion_version": champion},
    }


@pytest.fixture
def registration(tmp_path, model_name):
    return MlflowModelRegistrationDataset(
        model_name=model_name,
        metadata_filepath=str(tmp_path / "06_models" / "model_metadata.json"),
        model_card_filepath=str(tmp_path / "08_reporting" / "model_card.md"),
    )


def _register(dataset, payload) -> dict:
    with mlflow.start_run():
        dataset.save(payload)
    return dataset.load()


def test_first_promoted_model_becomes_champion_with_its_files(
    registration, model_name, small_model, tmp_path
):
    model, rows = small_model
    outcome = _register(registration, _payload(model, rows, promote=True, champion=None))
    assert outcome["version"] == "1" and outcome["outcome"] == "promoted"
    registry = ChampionRegistry(model_name)
    assert registry.champion_version() == "1"
    assert registry.alias_version("challenger") == "1"
    assert registry.champion_history() == ["1"]

    metadata = json.loads((tmp_path / "06_models" / "model_metadata.json").read_text())
    assert metadata["model_version"] == "1" and metadata["run_id"] == outcome["run_id"]
    card = (tmp_path / "08_reporting" / "model_card.md").read_text()
    assert card == f"# card v1 run {outcome['run_id']}"

    version = MlflowClient().get_model_version(model_name, "1")
    assert version.tags["data_fingerprint"] == "abc123"
    assert version.tags["gate.decision"] == "promote"
    assert "git_commit" in version.tags
    folder = mlflow.artifacts.download_artifacts(f"models:/{model_name}@champion")
    shipped = json.loads((__import__("pathlib").Path(folder) / "model_metadata.json").read_text())
    assert shipped["model_version"] == "1"
    for name in (
        "reference_profile.json",
        "model_card.md",
        "golden_sample.parquet",
        "MLmodel",
        "input_example.json",
    ):
        assert (__import__("pathlib").Path(folder) / name).exists(), name


def test_refused_model_is_registered_as_challenger_and_champion_stays(
    registration, model_name, small_model
):
    model, rows = small_model
    _register(registration, _payload(model, rows, promote=True, champion=None))
    outcome = _register(
        registration,
        _payload(model, rows, promote=False, champion="1", reason="refused: roc_auc 0.5 < 0.7"),
    )
    assert outcome == {**outcome, "version": "2", "outcome": "refused", "champion_version": "1"}
    registry = ChampionRegistry(model_name)
    assert registry.champion_version() == "1"
    assert registry.alias_version("challenger") == "2"
    assert registry.champion_history() == ["1"]
    tags = MlflowClient().get_model_version(model_name, "2").tags
    assert tags["gate.decision"] == "refuse" and tags["gate.reason"] == "refused: roc_auc 0.5 < 0.7"


def test_promotion_decided_against_a_stale_champion_is_refused(
    registration, model_name, small_model
):
    model, rows = small_model
    _register(registration, _payload(model, rows, promote=True, champion=None))
    # decided as if there were no champion, but v1 became champion meanwhile
    outcome = _register(registration, _payload(model, rows, promote=True, champion=None))
    assert outcome["outcome"] == "refused" and "while this run was evaluating" in outcome["reason"]
    assert ChampionRegistry(model_name).champion_version() == "1"


def test_incomplete_payload_is_rejected_before_anything_is_written(registration, model_name):
    with pytest.raises(DatasetError, match=r"lacks \['decision'"):
        registration.save({"model": None})
    assert not ChampionRegistry(model_name).exists()


def test_untracked_pipeline_writes_local_files_only(
    registration, model_name, small_model, tmp_path
):
    model, rows = small_model
    registration._logging_activated = False  # what kedro-mlflow does for untracked pipelines
    registration.save(_payload(model, rows, promote=True, champion=None))
    assert not ChampionRegistry(model_name).exists()
    metadata = json.loads((tmp_path / "06_models" / "model_metadata.json").read_text())
    assert metadata["model_version"] is None

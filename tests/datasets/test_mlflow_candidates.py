"""``MlflowCandidateRunsDataset`` logs one nested run per candidate (real SQLite store)."""

from __future__ import annotations

import mlflow
import pytest
from kedro.io import DatasetError
from mlflow import MlflowClient

from churn_mlops.datasets import MlflowCandidateRunsDataset


def test_each_candidate_is_a_child_run_with_params_metrics_and_model(mlflow_store, small_model):
    model, rows = small_model
    payload = {
        "input_example": rows.head(3).reset_index(drop=True),
        "logging": {"serialization_format": "skops", "skops_trusted_types": []},
        "candidates": {
            name: {
                "model": model,
                "params": {"C": c},
                "metrics": {"validation_pr_auc": v},
                "tags": {"winner": str(name == "b").lower()},
            }
            for name, c, v in (("a", 1.0, 0.2), ("b", 0.5, 0.3))
        },
    }
    dataset = MlflowCandidateRunsDataset()
    with mlflow.start_run() as parent:
        dataset.save(payload)
    client = MlflowClient()
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    by_name = {run.info.run_name: run for run in children}
    assert set(by_name) == {"candidate:a", "candidate:b"}
    assert by_name["candidate:b"].data.params == {"C": "0.5"}
    assert by_name["candidate:b"].data.metrics == {"validation_pr_auc": 0.3}
    assert by_name["candidate:b"].data.tags["winner"] == "true"
    logged = mlflow.search_logged_models(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"source_run_id = '{by_name['candidate:a'].info.run_id}'",
        output_format="list",
    )
    assert len(logged) == 1
    info = mlflow.models.get_model_info(f"models:/{logged[0].model_id}")
    assert info.signature is not None and info.saved_input_example_info is not None
    assert mlflow.active_run() is None


def test_candidate_runs_are_write_only():
    with pytest.raises(DatasetError, match="write-only"):
        MlflowCandidateRunsDataset().load()


def test_a_candidate_without_metrics_is_named(mlflow_store, small_model):
    model, rows = small_model
    with pytest.raises(DatasetError, match=r"candidate 'a' lacks \['metrics'\]"):
        MlflowCandidateRunsDataset().save(
            {
                "input_example": rows.head(2),
                "logging": {},
                "candidates": {"a": {"model": model, "params": {}}},
            }
        )

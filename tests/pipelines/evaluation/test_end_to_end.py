"""From nothing to a registered champion with ``kedro run``, then the gate and the CLI.

Runs the real CLI in a temporary copy of the project against a fresh MLflow SQLite store: the
default pipeline on small simulated data registers v1 as champion; a model trained on shuffled
labels becomes v2 and is refused; ``kedro models`` lists, force-promotes and rolls back.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import kedro_env

SMALL = ",".join(
    [
        "simulation.n_months=12",
        "simulation.population.initial_customers=1500",
        "simulation.population.monthly_signups=100",
        "simulation.scenario.start_month=6",
        "training.candidates.xgboost.search.n_trials=2",
        "training.candidates.xgboost.max_estimators=120",
        "evaluation.shap.sample_rows=500",
    ]
)


def _client(project) -> MlflowClient:
    return MlflowClient(tracking_uri=kedro_env(project)["MLFLOW_TRACKING_URI"])


@pytest.mark.slow
def test_kedro_run_registers_a_champion_and_the_gate_refuses_shuffled_labels(
    project_copy, run_kedro
):
    run_kedro(project_copy, "run", "--params", SMALL)

    client = _client(project_copy)
    champion = client.get_model_version_by_alias("churn_model", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["gate.decision"] == "promote"
    for tag in ("data_fingerprint", "features", "git_commit", "test.pr_auc"):
        assert tag in champion.tags
    pipeline_run = client.get_run(champion.run_id)
    assert "test.pr_auc" in pipeline_run.data.metrics
    assert "search.best_pr_auc" in pipeline_run.data.metrics
    children = client.search_runs(
        [pipeline_run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{champion.run_id}'",
    )
    assert {r.info.run_name for r in children} == {
        "candidate:logistic_regression",
        "candidate:xgboost",
    }
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {"evaluation/calibration_curve.png", "evaluation/shap_summary.png"} <= artifacts
    reporting = project_copy / "data" / "08_reporting"
    assert (reporting / "model_card.md").read_text().startswith("# Model card: churn_model v1")
    metadata = json.loads((project_copy / "data/06_models/model_metadata.json").read_text())
    assert metadata["model_version"] == "1" and metadata["run_id"] == champion.run_id

    # Retrain on shuffled training labels (validation and test keep the truth): refused.
    table_path = project_copy / "data/05_model_input/model_input_table.parquet"
    table = pd.read_parquet(table_path)
    months = table.snapshot_date.dt.to_period("M")
    train_rows = months < sorted(months.unique())[-4]
    table.loc[train_rows, "churned"] = np.random.default_rng(0).permutation(
        table.loc[train_rows, "churned"].to_numpy()
    )
    table.to_parquet(table_path)
    run_kedro(project_copy, "run", "--pipelines", "training,evaluation", "--params", SMALL)
    refused = client.get_model_version("churn_model", "2")
    assert refused.tags["gate.decision"] == "refuse"
    assert refused.tags["gate.reason"].startswith("refused: ")
    assert str(client.get_model_version_by_alias("churn_model", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("churn_model", "challenger").version) == "2"

    # The commands through the real `kedro` CLI (their refusals are tested in tests/registry).
    run_kedro(project_copy, "models", "promote", "2", "--force", "--reason", "e2e override")
    assert str(client.get_model_version_by_alias("churn_model", "champion").version) == "2"
    rolled = run_kedro(project_copy, "models", "rollback").stdout
    assert "champion v2 -> v1" in rolled
    assert str(client.get_model_version_by_alias("churn_model", "champion").version) == "1"

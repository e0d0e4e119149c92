"""Continuous training end to end, against a real MLflow SQLite store in a project copy.

1. ``kedro run`` on a small simulated business whose ``age_shift`` scenario starts in 2024-01,
   with the feature table cut at 2024-01: the champion (v1) never saw older signups.
2. The continuous-training command refreshes the feature table (all 16 months), monitors the
   latest month, finds ``age`` drifted, retrains, gates and records everything in MLflow.
3. The same command again on the same data: the trigger was handled, nothing is retrained.

Plus the driver's small pieces (parameter parsing, the handled-trigger ledger) on their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.conftest import kedro_env

DATA = (
    "simulation.population.initial_customers=1200,simulation.population.monthly_signups=100,"
    "simulation.n_months=16,simulation.scenario.name=age_shift,simulation.scenario.start_month=12,"
    "data_processing.period.months=16"
)
QUICK = (
    "training.candidates.xgboost.search.n_trials=1,training.candidates.xgboost.max_estimators=40,"
    "evaluation.shap.sample_rows=100,evaluation.shap.background_rows=50,"
    "evaluation.behaviour.sample_rows=50,monitoring.evidently.enabled=false,"
    # The export pipeline (wheelhouse, parity check in a fresh venv) has its own tests.
    "continuous_training.export_pipelines=[]"
)


def continuous_training(project: Path, *extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "churn_mlops.orchestration.continuous_training", *extra],
        cwd=project,
        env=kedro_env(project),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    saved = project / "data/08_reporting/monitoring/continuous_training.json"
    return json.loads(saved.read_text())


@pytest.mark.slow
def test_retrains_once_per_trigger_and_records_why(project_copy, run_kedro):
    run_kedro(
        project_copy,
        "run",
        "--params",
        f"{DATA},{QUICK},feature_engineering.snapshots.period_end=2024-01-01",
    )
    mlflow.set_tracking_uri(kedro_env(project_copy)["MLFLOW_TRACKING_URI"])
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("churn_model", "champion").version) == "1"

    outcome = continuous_training(project_copy, "--params", f"{DATA},{QUICK}")
    assert outcome["action"] == "retrained", outcome
    assert outcome["decision_retrain"] is True
    assert any("drift" in r and "age" in r for r in outcome["reasons"])
    assert outcome["champion_before"] == "1"
    assert outcome["challenger_version"] == "2"
    if outcome["outcome"] == "promoted":
        assert outcome["champion_after"] == "2"
    else:  # refused by the gate: nothing worse is promoted, the champion stays
        assert outcome["champion_after"] == "1"
    assert outcome["exported"] == []
    champion = str(client.get_model_version_by_alias("churn_model", "champion").version)
    assert champion == outcome["champion_after"]

    ct_run = client.get_run(outcome["ct_run_id"])
    tags = ct_run.data.tags
    assert ct_run.info.run_name == "continuous_training" and ct_run.info.status == "FINISHED"
    assert tags["ct.action"] == "retrained" and tags["ct.trigger_id"] == outcome["trigger_id"]
    assert "age" in tags["ct.reasons"]
    assert tags["ct.challenger_version"] == "2" and tags["ct.champion_before"] == "1"
    training_run = client.get_run(outcome["training_run_id"])
    assert training_run.data.tags["mlflow.parentRunId"] == ct_run.info.run_id
    monitoring_run = client.get_run(outcome["monitoring_run_id"])
    assert monitoring_run.data.tags["mlflow.parentRunId"] == ct_run.info.run_id
    assert "monitoring.drift.age.drifted" in monitoring_run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(monitoring_run.info.run_id, "monitoring")}
    assert {"monitoring/diagnosis.md", "monitoring/retrain_decision.json"} <= artifacts
    version_tags = client.get_model_version("churn_model", "2").tags
    assert version_tags["ct.trigger_id"] == outcome["trigger_id"]

    again = continuous_training(
        project_copy, "--params", f"{DATA},{QUICK},continuous_training.refresh_pipelines=[]"
    )
    assert again["trigger_id"] == outcome["trigger_id"]
    assert again["action"] == "already_handled"
    assert again["handled_by"] == outcome["ct_run_id"]
    versions = client.search_model_versions("name='churn_model'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]


def test_params_are_parsed_like_kedro_run():
    from churn_mlops.orchestration.continuous_training import _parse_params

    assert _parse_params("a.b=1,a.c=x,d=[],e=2024-03-01,f=null") == {
        "a": {"b": 1, "c": "x"},
        "d": [],
        "e": "2024-03-01",
        "f": None,
    }
    with pytest.raises(Exception, match="is not KEY=VALUE"):
        _parse_params("oops")


@pytest.mark.slow
def test_a_trigger_is_handled_only_by_a_retrain(tmp_path):
    from churn_mlops.orchestration.continuous_training import (
        TAG_ACTION,
        TAG_TRIGGER,
        _already_handled,
    )

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("ct")
    cases = [
        ("retrained", "FINISHED", True),
        ("retraining", "RUNNING", True),  # another run is retraining it right now
        ("retraining", "FAILED", False),  # crashed: the next run may retry
        ("failed", "FAILED", False),
        ("no_retrain", "FINISHED", False),
    ]
    for i, (action, status, handled) in enumerate(cases):
        run = client.create_run(
            experiment,
            run_name="continuous_training",
            tags={TAG_TRIGGER: f"t{i}", TAG_ACTION: action},
        )
        if status != "RUNNING":
            client.set_terminated(run.info.run_id, status)
        found = _already_handled(client, experiment, f"t{i}")
        assert (found == run.info.run_id) is handled, (action, status)
    assert _already_handled(client, experiment, "never-seen") is None

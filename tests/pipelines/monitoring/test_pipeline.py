"""Wiring tests of the monitoring pipeline: names, catalog entries, a full in-memory run."""

from __future__ import annotations

import pandas as pd
import yaml

from churn_mlops.pipelines.monitoring import create_pipeline
from tests.conftest import PROJECT_ROOT, committed_feature_names
from tests.pipelines.monitoring.conftest import with_window
from tests.pipelines.monitoring.support import (
    MONITORING_OUTPUTS,
    monitoring_parameters,
    run_monitoring,
)

CATALOG = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_monitoring.yml").read_text())
MEMORY_ONLY = {
    "monitoring_config",
    "monitoring_drift_summary",
    "monitoring_performance_summary",
    "monitoring_data_quality",
    "monitoring_freshness",
}


def test_every_node_is_named_and_unique():
    names = [n.name for n in create_pipeline().nodes]
    assert len(names) == len(set(names)) == 11


def test_free_inputs_are_catalog_entries_or_parameters():
    inputs = create_pipeline().inputs()
    params = {i for i in inputs if i.startswith("params:")}
    assert params == {"params:monitoring", "params:evaluation.business"}
    assert inputs - params <= set(CATALOG)


def test_outputs_are_persisted_except_small_summaries():
    outputs = create_pipeline().all_outputs()
    assert outputs == set(MONITORING_OUTPUTS)
    assert outputs - MEMORY_ONLY <= set(CATALOG)
    for name in ("evidently_report", "monitoring_diagnosis_report", "retrain_decision"):
        entry = CATALOG[name]
        assert entry["type"] == "kedro_mlflow.io.artifacts.MlflowArtifactDataset"
        assert entry["dataset"]["filepath"].startswith("data/08_reporting/monitoring/")
    assert CATALOG["monitoring_metrics"]["type"].endswith("MlflowMetricsHistoryDataset")


def test_every_catalog_entry_has_a_kedro_viz_layer():
    layers = {
        "raw",
        "intermediate",
        "primary",
        "feature",
        "model_input",
        "models",
        "model_output",
        "reporting",
    }
    for name, entry in CATALOG.items():
        assert entry["metadata"]["kedro-viz"]["layer"] in layers, name


def test_full_run_on_synthetic_data(synthetic_champion, reference_table):
    out = run_monitoring(synthetic_champion, model_input_table=with_window(reference_table))
    assert out["monitoring_window"]["rows"] == 1500
    # every feature of the contract + the score
    assert len(out["monitoring_drift_table"]) == len(committed_feature_names()) + 1
    assert out["retrain_decision"]["retrain"] is False
    assert out["monitoring_diagnosis"]["applies"] == []
    assert out["monitoring_diagnosis_report"].startswith("# Monitoring diagnosis — churn_model v1")


def test_full_run_on_a_prediction_log_with_delayed_labels(synthetic_champion, reference_table):
    import numpy as np
    import pandas as pd

    table = with_window(reference_table, age_shift=12)
    rng = np.random.default_rng(5)
    names = [f["name"] for f in synthetic_champion["model_metadata"]["features"]]
    stamps = pd.to_datetime(table["snapshot_date"]).dt.tz_localize("UTC") + pd.to_timedelta(
        rng.uniform(0, 27, len(table)), unit="D"
    )
    log = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(table))],
            "timestamp": stamps,
            "model_version": "1",
            "customer_id": table["customer_id"],
            "score": synthetic_champion["model"].predict_proba(table[names])[:, 1],
            "label": 0,
            "parse_error": None,
            **{f"features.{n}": table[n] for n in names},
        }
    )
    churned = table["churned"] == 1
    churn_records = pd.DataFrame(
        {
            "customer_id": table.loc[churned, "customer_id"],
            "churn_date": (stamps[churned] + pd.Timedelta(days=3))
            .dt.tz_localize(None)
            .dt.floor("D"),
        }
    )
    params = monitoring_parameters(**{"window.source": "prediction_log", "window.days": 28})
    out = run_monitoring(
        synthetic_champion, prediction_log=log, churn_records=churn_records, params=params
    )
    window = out["monitoring_window"]
    assert window["source"] == "prediction_log" and window["window_periods"] == ["2023-12"]
    assert out["monitoring_drift_summary"]["drifted_features"] == ["age"]
    assert out["retrain_decision"]["fired_triggers"] == ["drift"]
    performance = out["monitoring_performance"].set_index("period")
    # Older months' labels have all arrived (churn records, or 30 days without churn) ...
    assert (performance.loc["2023-06":"2023-10", "labelled"] == 600).all()
    # ... the window's have not: only its churners are known so far.
    assert performance.loc["2023-12", "labelled"] < 1500


def test_a_one_row_window_reads_insufficient_data_not_a_verdict(
    synthetic_champion, reference_table
):
    from tests.pipelines.monitoring.support import synthetic_table

    one_row = synthetic_table(["2023-12-01"], 1, seed=3)
    one_row["customer_id"] += 10_000_000
    out = run_monitoring(
        synthetic_champion, model_input_table=pd.concat([reference_table, one_row])
    )
    drift = out["monitoring_drift_table"]
    assert drift["insufficient_data"].all() and not drift["drifted"].any()
    findings = out["monitoring_diagnosis"]["findings"]
    assert findings["data_drift"]["summary"].startswith("insufficient data")
    assert findings["concept_drift"]["summary"].startswith("insufficient data")
    assert "performance held" not in out["monitoring_diagnosis"]["headline"]
    triggers = out["retrain_decision"]["triggers"]
    assert not triggers["drift"]["fired"] and triggers["drift"]["reason"].startswith(
        "insufficient data"
    )
    assert not triggers["performance"]["fired"]

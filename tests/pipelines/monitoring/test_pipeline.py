"""Wiring tests of the monitoring pipeline: names, catalog entries, a full in-memory run."""

from __future__ import annotations

import yaml

from churn_mlops.pipelines.monitoring import create_pipeline
from tests.conftest import PROJECT_ROOT
from tests.pipelines.monitoring.conftest import with_window
from tests.pipelines.monitoring.support import MONITORING_OUTPUTS, run_monitoring

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
    assert len(out["monitoring_drift_table"]) == 20  # 19 features + the score
    assert out["retrain_decision"]["retrain"] is False
    assert out["monitoring_diagnosis"]["applies"] == []
    assert out["monitoring_diagnosis_report"].startswith("# Monitoring diagnosis — churn_model v1")

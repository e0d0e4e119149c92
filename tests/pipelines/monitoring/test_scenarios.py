"""Scenario tests on the simulator: each scenario's signature is found and named.

The simulated business (1 500 customers, 16 months from 2023-01) runs through the real
simulation, data_processing and feature_engineering pipelines; the scenario starts in month 12
(2024-01). A champion learns from the snapshots before 2023-11 of the *baseline* run, and the
monitoring pipeline then watches the later months of each scenario.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.pipelines.monitoring.support import (
    monitoring_parameters,
    run_monitoring,
    simulate_scenario,
    train_champion,
)

pytestmark = pytest.mark.slow

_CACHE: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    """``scenario(name)`` -> the scenario's tables, simulated once per test module."""

    def get(name: str) -> dict[str, Any]:
        if name not in _CACHE:
            _CACHE[name] = simulate_scenario(name, Path(tmp_path_factory.mktemp(name)))
        return _CACHE[name]

    return get


@pytest.fixture(scope="module")
def champion(scenario) -> dict[str, Any]:
    return train_champion(scenario("baseline")["model_input_table"])


def monitor(champion, data, end_month: str = "2024-04-01", **kwargs) -> dict[str, Any]:
    return run_monitoring(
        champion,
        model_input_table=data["model_input_table"],
        validation_report=data["validation_report"],
        churn_records=data["churn_records"],
        params=monitoring_parameters(**{"window.end_month": end_month}),
        **kwargs,
    )


def test_baseline_raises_no_alarm_over_several_months(champion, scenario):
    data = scenario("baseline")
    for month in ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"):
        out = monitor(champion, data, month)
        assert out["monitoring_drift_summary"]["drifted_features"] == [], month
        assert not out["monitoring_drift_summary"]["score_drift"], month
        assert out["monitoring_diagnosis"]["applies"] == [], month
        assert out["retrain_decision"]["retrain"] is False, month


def test_age_shift_flags_age_and_triggers_a_retrain(champion, scenario):
    out = monitor(champion, scenario("age_shift"))
    assert out["monitoring_drift_summary"]["drifted_features"] == ["age"]
    decision = out["retrain_decision"]
    assert decision["retrain"] is True
    assert decision["fired_triggers"] == ["drift"]
    assert "age" in decision["triggers"]["drift"]["reason"]
    assert out["monitoring_diagnosis"]["applies"] == ["data_drift"]
    assert "`age`: PSI" in "\n".join(
        out["monitoring_diagnosis"]["findings"]["data_drift"]["evidence"]
    )


def test_online_spend_flip_is_concept_drift_with_little_input_drift(champion, scenario):
    out = monitor(champion, scenario("online_spend_flip"))
    summary = out["monitoring_drift_summary"]
    assert summary["n_drifted"] <= 1 and not summary["dataset_drift"]
    perf = out["monitoring_performance_summary"]
    assert perf["performance_drop"] and perf["drop"] > 0.05
    diagnosis = out["monitoring_diagnosis"]
    assert "concept_drift" in diagnosis["applies"]
    assert "data_quality" not in diagnosis["applies"]
    assert "feature_change" not in diagnosis["applies"]
    assert (
        out["retrain_decision"]["retrain"]
        and "performance" in out["retrain_decision"]["fired_triggers"]
    )


def test_data_quality_is_named_by_the_diagnosis(champion, scenario):
    out = monitor(champion, scenario("data_quality"))
    finding = out["monitoring_diagnosis"]["findings"]["data_quality"]
    assert finding["applies"]
    assert any("duration_minutes" in e for e in finding["evidence"])
    assert out["retrain_decision"]["retrain"] is False
    assert (
        "data_quality" in out["retrain_decision"]["blocked_by"]
        or not out["retrain_decision"]["fired_triggers"]
    )
    assert "### data quality: APPLIES" in out["monitoring_diagnosis_report"]


def test_feature_change_is_named_with_its_factor(champion, scenario):
    out = monitor(champion, scenario("feature_change"))
    finding = out["monitoring_diagnosis"]["findings"]["feature_change"]
    assert finding["applies"]
    assert any("`online_spend_90d` changed scale" in e and "x100" in e for e in finding["evidence"])
    decision = out["retrain_decision"]
    assert decision["retrain"] is False and decision["blocked_by"] == ["feature_change"]
    assert "### feature change: APPLIES" in out["monitoring_diagnosis_report"]

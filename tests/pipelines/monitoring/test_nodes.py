"""Node tests of the monitoring pipeline on small synthetic data (fast)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn_mlops.monitoring.errors import MonitoringWindowError
from churn_mlops.pipelines.monitoring.diagnosis import (
    check_data_quality,
    check_freshness,
    diagnose,
)
from churn_mlops.pipelines.monitoring.nodes import (
    assemble_monitoring_rows,
    build_evidently_report,
    build_monitoring_metrics,
    compute_drift,
    compute_performance,
    decide_retraining,
    validate_monitoring_parameters,
)
from churn_mlops.pipelines.monitoring.params import MonitoringConfigError
from churn_mlops.pipelines.monitoring.report import render_diagnosis_report
from tests.pipelines.monitoring.conftest import with_window
from tests.pipelines.monitoring.support import (
    base_parameters,
    monitoring_parameters,
    run_monitoring,
)

NOW = datetime(2024, 1, 10, tzinfo=timezone.utc)


def config(**overrides: Any):
    return validate_monitoring_parameters(monitoring_parameters(**overrides))


# --------------------------------------------------------------------------- parameters


def test_conf_base_parameters_validate():
    cfg = config()
    assert cfg.window.source == "model_input_table"
    assert cfg.drift.statistics.psi.threshold > 0
    assert (
        cfg.performance.label_horizon_days
        == base_parameters("feature_engineering")["snapshots"]["label_horizon_days"]
    )


def test_unknown_or_bad_parameter_is_named():
    params = monitoring_parameters()
    params["drift"]["statistics"]["psi"]["treshold"] = 0.1
    with pytest.raises(
        MonitoringConfigError, match=r"monitoring\.drift\.statistics\.psi\.treshold"
    ):
        validate_monitoring_parameters(params)
    with pytest.raises(MonitoringConfigError, match=r"monitoring\.window\.source = 'kafka'"):
        validate_monitoring_parameters(monitoring_parameters(**{"window.source": "kafka"}))


# --------------------------------------------------------------------------- window


def test_window_from_feature_table_scores_latest_month(synthetic_champion, reference_table):
    table = with_window(reference_table)
    rows, info = assemble_monitoring_rows(
        synthetic_champion, table, pd.DataFrame(), pd.DataFrame(), None, config()
    )
    window = rows.loc[rows["in_window"]]
    assert info["window_periods"] == ["2023-12"] and info["rows"] == len(window) == 1500
    assert set(rows.loc[~rows["in_window"], "period"]) == {
        "2023-06",
        "2023-07",
        "2023-08",
        "2023-09",
        "2023-10",
        "2023-11",
    }
    names = [f["name"] for f in synthetic_champion["model_metadata"]["features"]]
    expected = synthetic_champion["model"].predict_proba(
        table.loc[pd.to_datetime(table["snapshot_date"]) == "2023-12-01", names]
    )[:, 1]
    np.testing.assert_allclose(window["score"].to_numpy(), expected)
    assert window["label"].notna().all()


def test_window_end_month_and_errors(synthetic_champion, reference_table):
    rows, info = assemble_monitoring_rows(
        synthetic_champion,
        reference_table,
        pd.DataFrame(),
        pd.DataFrame(),
        None,
        config(**{"window.end_month": "2023-09-15", "window.months": 2}),
    )
    assert info["window_periods"] == ["2023-08", "2023-09"]
    assert rows["period"].max() == "2023-09"
    with pytest.raises(MonitoringWindowError, match="end_month = 2025-01-01 is not a snapshot"):
        assemble_monitoring_rows(
            synthetic_champion,
            reference_table,
            pd.DataFrame(),
            pd.DataFrame(),
            None,
            config(**{"window.end_month": "2025-01-01"}),
        )
    with pytest.raises(MonitoringWindowError, match=r"lacks column\(s\) \['age'\]"):
        assemble_monitoring_rows(
            synthetic_champion,
            reference_table.drop(columns="age"),
            pd.DataFrame(),
            pd.DataFrame(),
            None,
            config(),
        )
    with pytest.raises(MonitoringWindowError, match="model_input_table.parquet does not exist"):
        assemble_monitoring_rows(
            synthetic_champion, None, pd.DataFrame(), pd.DataFrame(), None, config()
        )


def prediction_log(table: pd.DataFrame, start: str, champion: dict[str, Any]) -> pd.DataFrame:
    """Turn feature rows into prediction-log records one hour apart from ``start``."""
    names = [f["name"] for f in champion["model_metadata"]["features"]]
    scores = champion["model"].predict_proba(table[names])[:, 1]
    records = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(table))],
            "timestamp": pd.Timestamp(start, tz="UTC")
            + pd.to_timedelta(np.arange(len(table)), unit="h"),
            "model_version": "1",
            "customer_id": table["customer_id"].to_numpy(),
            "score": scores,
            "label": (scores >= 0.5).astype(int),
            "parse_error": None,
        }
    )
    for name in names:
        records[f"features.{name}"] = table[name].to_numpy()
    return records


def test_window_from_prediction_log_joins_delayed_labels(synthetic_champion, reference_table):
    rows = reference_table.iloc[:400].reset_index(drop=True)
    log = prediction_log(rows, "2024-01-01", synthetic_champion)
    log.loc[len(log)] = {"parse_error": "predictions-x.jsonl:7: Expecting value"}
    feedback = pd.DataFrame(
        {
            "request_id": ["r0", None],
            "customer_id": [None, rows["customer_id"].iloc[1]],
            "label": [1, 0],
            "timestamp": pd.to_datetime(["2024-01-20", "2024-01-20"], utc=True),
        }
    )
    churn = pd.DataFrame(
        {
            "customer_id": [rows["customer_id"].iloc[2], rows["customer_id"].iloc[399]],
            "churn_date": pd.to_datetime(["2024-01-05", "2024-01-30"]),
        }
    )
    cfg = config(**{"window.source": "prediction_log", "window.days": 7})
    out, info = assemble_monitoring_rows(synthetic_champion, None, log, feedback, churn, cfg)
    assert info["log_parse_errors"] == 1
    as_of = log["timestamp"].max()
    assert pd.Timestamp(info["as_of"]) == as_of
    assert out["in_window"].sum() == (log["timestamp"] > as_of - pd.Timedelta(days=7)).sum()
    by_request = out.set_index("request_id")["label"]
    assert by_request["r0"] == 1  # feedback by request id
    assert by_request["r1"] == 0  # feedback by customer id
    assert by_request["r2"] == 1  # churned 4 days after the prediction
    # r3 was predicted on 2024-01-01 03:00; 30 days have not passed at as_of (~2024-01-17).
    assert pd.isna(by_request["r3"])
    assert pd.isna(by_request["r399"])  # churn after as_of is not known yet
    np.testing.assert_allclose(out["age"].to_numpy(), rows["age"].to_numpy())


def test_prediction_log_without_records_is_an_error(synthetic_champion):
    empty = pd.DataFrame({"timestamp": [], "parse_error": []})
    cfg = config(**{"window.source": "prediction_log"})
    with pytest.raises(MonitoringWindowError, match="no readable prediction record"):
        assemble_monitoring_rows(synthetic_champion, None, empty, empty, None, cfg)


# --------------------------------------------------------------------------- drift


def rows_for(champion, table, **overrides):
    return assemble_monitoring_rows(
        champion, table, pd.DataFrame(), pd.DataFrame(), None, config(**overrides)
    )


def test_drift_flags_the_shifted_feature_only(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table, age_shift=12))
    table, summary = compute_drift(rows, synthetic_champion, config())
    assert summary["drifted_features"] == ["age"]
    assert summary["enough_rows"] and not summary["dataset_drift"]
    assert table["feature"].iloc[-1] == "score" and table["kind"].iloc[-1] == "score"
    calm, calm_summary = compute_drift(
        rows_for(synthetic_champion, with_window(reference_table))[0], synthetic_champion, config()
    )
    assert calm_summary["drifted_features"] == []


def test_trend_feature_does_not_count(synthetic_champion, reference_table):
    table = with_window(reference_table)
    table.loc[table["snapshot_date"] == "2023-12-01", "tenure_days"] += 2000
    rows, _ = rows_for(synthetic_champion, table)
    _, summary = compute_drift(rows, synthetic_champion, config())
    assert summary["drifted_features"] == []
    assert summary["trend_features_drifted"] == ["tenure_days"]


def test_too_small_window_gives_no_drift_verdict(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table, age_shift=12))
    _, summary = compute_drift(rows, synthetic_champion, config(**{"window.min_rows": 5000}))
    assert summary["enough_rows"] is False and summary["dataset_drift"] is False


# --------------------------------------------------------------------------- performance


def test_performance_per_month_and_business_value(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table))
    business = base_parameters("evaluation")["business"]
    table, summary = compute_performance(rows, synthetic_champion, business, config())
    december = rows.loc[rows["period"] == "2023-12"]
    row = table.set_index("period").loc["2023-12"]
    assert row["roc_auc"] == pytest.approx(roc_auc_score(december["label"], december["score"]))
    threshold = synthetic_champion["model_metadata"]["threshold"]
    flagged = december["score"] >= threshold
    gain = business["offer_success_rate"] * business["retained_customer_value"]
    net = gain * december.loc[flagged, "label"].sum() - business["offer_cost"] * flagged.sum()
    assert row["net_value"] == pytest.approx(net)
    assert summary["window_net_value"] == pytest.approx(net)
    assert summary["evaluable"] and not summary["performance_drop"]
    assert summary["reference"] == synthetic_champion["model_metadata"]["metrics"]["roc_auc"]


def test_concept_drift_drops_performance(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table, flip_spend_effect=True))
    business = base_parameters("evaluation")["business"]
    _, summary = compute_performance(rows, synthetic_champion, business, config())
    assert summary["drop"] > 0.05 and summary["drop_z"] >= 2
    assert summary["performance_drop"]


def test_unlabelled_window_is_not_evaluable(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table))
    rows = rows.assign(label=rows["label"].where(~rows["in_window"]))
    _, summary = compute_performance(
        rows, synthetic_champion, base_parameters("evaluation")["business"], config()
    )
    assert summary["window_labelled"] == 0 and not summary["evaluable"]
    assert summary["drop"] is None and not summary["performance_drop"]


# --------------------------------------------------------------------------- data quality


def window_info(rows: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    return {"rows": int(rows["in_window"].sum()), "log_parse_errors": 0, **extra}


def test_data_quality_names_nulls_ranges_and_categories(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table))
    window = rows["in_window"]
    idx = rows.index[window]
    rows.loc[idx[:150], "session_minutes_30d"] = np.nan
    rows.loc[idx[150:200], "age"] = 150
    rows.loc[idx[200:260], "contract"] = "Month-to-Month"
    report = check_data_quality(rows, synthetic_champion, window_info(rows), None, config())
    text = " ".join(report["quality_issues"])
    assert "`session_minutes_30d` is null in 10.0%" in text
    assert "`age`: 3.3% of rows outside [18.0, 100.0] (e.g. [150.0])" in text
    assert "`contract`: 4.0% of rows not an allowed category ({'Month-to-Month': 60})" in text
    assert report["feature_changes"] == []


def test_unit_change_is_named_with_its_factor(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table, spend_multiplier=100))
    report = check_data_quality(rows, synthetic_champion, window_info(rows), None, config())
    assert len(report["feature_changes"]) == 1
    assert "`online_spend_90d` changed scale" in report["feature_changes"][0]
    assert "nearest power of ten: x100" in report["feature_changes"][0]


def test_count_features_with_coarse_bins_are_not_a_unit_change(synthetic_champion, reference_table):
    """Count features put quantiles on integers; only a change the means confirm counts."""
    table = with_window(reference_table)
    december = table["snapshot_date"] == "2023-12-01"
    table.loc[december, "late_payments_90d"] = 0  # a real drop, not a unit change
    rows, _ = rows_for(synthetic_champion, table)
    report = check_data_quality(rows, synthetic_champion, window_info(rows), None, config())
    assert report["feature_changes"] == []


def test_quarantined_rows_from_the_validation_report(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table))
    validation = {
        "passed": True,
        "tables": {"events": {"rows_raw": 10_000}},
        "failures": [
            {
                "table": "events",
                "column": "duration_minutes",
                "rule": "min",
                "severity": "soft",
                "expected": ">= 0",
                "count": 200,
            },
            {
                "table": "events",
                "column": "amount",
                "rule": "min",
                "severity": "soft",
                "expected": ">= 0",
                "count": 1,
            },
        ],
    }
    report = check_data_quality(rows, synthetic_champion, window_info(rows), validation, config())
    assert report["quality_issues"] == [
        "data_processing quarantined 200 row(s) of `events` (2.00%) breaking "
        "`duration_minutes` min (expected >= 0)"
    ]


def test_log_problems_are_data_quality_and_schema_changes(synthetic_champion, reference_table):
    rows, _ = rows_for(synthetic_champion, with_window(reference_table))
    info = window_info(
        rows, log_parse_errors=3, missing_features=["plan"], unparsable_values={"age": 4}
    )
    report = check_data_quality(rows, synthetic_champion, info, None, config())
    assert "3 prediction-log line(s) could not be parsed" in report["quality_issues"]
    assert any("['plan'] are missing" in c for c in report["feature_changes"])
    assert any("`age`: 4 logged value(s) are not numbers" in c for c in report["feature_changes"])


# --------------------------------------------------------------------------- freshness


def info_for_freshness(**changes: Any) -> dict[str, Any]:
    base = {
        "source": "prediction_log",
        "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-31T00:00:00+00:00",
        "rows": 5000,
        "latest_record": "2024-01-31T00:00:00+00:00",
        "available_periods": ["2023-12", "2024-01"],
    }
    return {**base, **changes}


def test_stale_log_missing_months_and_failed_runs():
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "run_name": ["feature_engineering", "feature_engineering", "training", "monitoring"],
            "status": ["FAILED", "FINISHED", "FAILED", "FAILED"],
            "start_time": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], utc=True
            ),
            "end_time": pd.NaT,
        }
    )
    report = check_freshness(
        info_for_freshness(available_periods=["2023-10", "2024-01"]),
        {"passed": False},
        runs,
        datetime(2024, 4, 1, tzinfo=timezone.utc),
        config(),
    )
    text = " | ".join(report["issues"])
    assert "is 61 days older than now" in text
    assert "no data for month(s) ['2023-11', '2023-12']" in text
    assert "validation failed on hard rules" in text
    # feature_engineering recovered; this monitoring run supersedes the failed one
    assert [r["run_name"] for r in report["failed_runs"]] == ["training"]


def test_fresh_data_has_no_issue():
    report = check_freshness(
        info_for_freshness(),
        {"passed": True},
        None,
        datetime(2024, 2, 5, tzinfo=timezone.utc),
        config(),
    )
    assert report["issues"] == [] and report["staleness_days"] == pytest.approx(5)


def test_feature_table_staleness_uses_the_validated_period():
    info = info_for_freshness(source="model_input_table", latest_record="2023-06-01T00:00:00")
    report = check_freshness(
        info, {"passed": True, "period": {"end_date": "2024-01-01"}}, None, NOW, config()
    )
    assert any(
        "184 days older than the end of the validated raw period" in i for i in report["issues"]
    )


# --------------------------------------------------------------------------- diagnosis + decision


def monitor(champion, table, **kwargs):
    return run_monitoring(champion, model_input_table=table, clock=NOW, **kwargs)


def test_concept_drift_is_diagnosed_when_inputs_hold(synthetic_champion, reference_table):
    out = monitor(synthetic_champion, with_window(reference_table, flip_spend_effect=True))
    diagnosis = out["monitoring_diagnosis"]
    assert diagnosis["performance_drop"]
    assert diagnosis["applies"] == ["concept_drift"]
    decision = out["retrain_decision"]
    assert decision["retrain"] and decision["fired_triggers"] == ["performance"]


def test_drift_explains_a_drop_when_many_inputs_moved(synthetic_champion):
    drift = pd.DataFrame(
        {
            "feature": ["a", "b"],
            "kind": ["numeric"] * 2,
            "psi": [1.0, 1.0],
            "kl": [1.0, 1.0],
            "wasserstein": [1.0, 1.0],
            "ks_statistic": [0.5, 0.5],
            "ks_p_value": [0.0, 0.0],
            "chi2_statistic": [math.nan] * 2,
            "chi2_p_value": [math.nan] * 2,
            "votes": [4, 4],
            "drifted": [True, True],
        }
    )
    summary = {
        "drifted_features": ["a", "b"],
        "n_features": 2,
        "dataset_drift": True,
        "score_drift": True,
        "enough_rows": True,
    }
    perf = {
        "metric": "roc_auc",
        "current": 0.6,
        "reference": 0.8,
        "drop": 0.2,
        "drop_z": 5.0,
        "performance_drop": True,
        "window_labelled": 900,
        "window_positives": 90,
    }
    quality = {"quality_issues": [], "feature_changes": []}
    freshness = {"issues": [], "staleness_days": 1.0}
    diagnosis = diagnose(drift, summary, pd.DataFrame(), perf, quality, freshness, config())
    assert diagnosis["applies"] == ["data_drift"]
    assert "data drift explains it" in diagnosis["findings"]["concept_drift"]["summary"]
    assert "`a`: PSI 1.000" in diagnosis["findings"]["data_drift"]["evidence"][0]


def test_data_issue_blocks_retraining_with_its_reason(synthetic_champion, reference_table):
    out = monitor(synthetic_champion, with_window(reference_table, spend_multiplier=100))
    decision = out["retrain_decision"]
    assert decision["fired_triggers"] == ["drift"]
    assert decision["blocked_by"] == ["feature_change"]
    assert decision["retrain"] is False
    assert any(r.startswith("blocked by feature_change") for r in decision["reasons"])


def test_schedule_trigger_and_stable_trigger_id(synthetic_champion, reference_table):
    out = monitor(synthetic_champion, with_window(reference_table))
    calm = out["retrain_decision"]
    assert calm["retrain"] is False and calm["trigger_id"] is None
    assert calm["reasons"] == ["no trigger fired"]
    inputs = [
        out[name]
        for name in (
            "monitoring_diagnosis",
            "monitoring_drift_summary",
            "monitoring_performance_summary",
            "monitoring_window",
        )
    ]
    old = synthetic_champion["registered_at"] + timedelta(days=200)
    decision = decide_retraining(*inputs, synthetic_champion, old, out["monitoring_config"])
    assert decision["retrain"] and decision["fired_triggers"] == ["schedule"]
    assert "is 200 days old (limit 90)" in decision["triggers"]["schedule"]["reason"]
    again = decide_retraining(
        *inputs, synthetic_champion, old + timedelta(days=1), out["monitoring_config"]
    )
    assert again["trigger_id"] == decision["trigger_id"]
    other_window = {**inputs[3], "end": "2024-02-01T00:00:00"}
    moved = decide_retraining(
        *inputs[:3], other_window, synthetic_champion, old, out["monitoring_config"]
    )
    assert moved["trigger_id"] != decision["trigger_id"]


def test_bootstrap_standard_error_matches_a_plain_loop():
    from churn_mlops.pipelines.monitoring.nodes import _bootstrap_se

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    s = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.2, 400), 0, 1)
    fast = _bootstrap_se(y, s, "roc_auc", 100, 3)
    idx = np.random.default_rng(3).integers(0, 400, (100, 400))
    plain = np.std([roc_auc_score(y[i], s[i]) for i in idx], ddof=1)
    assert fast == pytest.approx(plain, rel=1e-9)
    assert 0 < _bootstrap_se(y, s, "pr_auc", 50, 3) < 0.2


def test_decision_is_json_and_report_has_every_check(synthetic_champion, reference_table):
    out = monitor(synthetic_champion, with_window(reference_table, age_shift=12))
    decision = out["retrain_decision"]
    json.dumps(decision)
    assert decision["champion"]["version"] == "1" and decision["window"]["rows"] == 1500
    report = out["monitoring_diagnosis_report"]
    for heading in (
        "### data drift: APPLIES",
        "### concept drift: ok",
        "### data quality: ok",
        "### feature change: ok",
        "### pipeline freshness: ok",
        "## Drift per feature",
        "## Performance per month",
    ):
        assert heading in report
    assert "**Retraining: YES** — drift: 1 feature(s) drifted: age" in report


def test_metrics_are_finite_and_named(synthetic_champion, reference_table):
    out = monitor(synthetic_champion, with_window(reference_table, age_shift=12))
    metrics = out["monitoring_metrics"]
    assert metrics["drift.age.drifted"]["value"] == 1.0
    assert metrics["drift.n_drifted"]["value"] == 1.0
    assert metrics["window.rows"]["value"] == 1500.0
    assert "drift.contract.chi2_statistic" in metrics and "performance.current" in metrics
    assert all(math.isfinite(m["value"]) and m["step"] == 0 for m in metrics.values())
    assert build_monitoring_metrics is not None and render_diagnosis_report is not None


@pytest.mark.slow
def test_evidently_report_is_standalone_html(
    synthetic_champion, reference_table, monkeypatch, capsys
):
    from churn_mlops.progress import PROGRESS_ENV

    rows, _ = rows_for(synthetic_champion, with_window(reference_table, age_shift=12))
    small = pd.concat(
        [rows.loc[rows["in_window"]].head(300), rows.loc[~rows["in_window"]].head(600)]
    )
    monkeypatch.setenv(PROGRESS_ENV, "1")
    html = build_evidently_report(small, synthetic_champion, config())
    assert capsys.readouterr().err.count("monitoring report: 100%") == 1  # one progress bar
    assert html.lstrip().lower().startswith("<html") or "<!doctype html" in html[:200].lower()
    assert "age" in html and len(html) > 10_000
    skipped = build_evidently_report(small.loc[small["in_window"]], synthetic_champion, config())
    assert "no history rows before the window" in skipped

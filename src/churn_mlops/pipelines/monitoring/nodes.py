"""Nodes of the ``monitoring`` pipeline: drift, delayed-label performance, the retraining
decision, MLflow metrics and the evidently report.

The current window is assembled in ``window.py``; the data-quality, freshness and diagnosis
nodes are in ``diagnosis.py``. Every node is a pure
function of its inputs; the champion, the logs and the clock come in through catalog datasets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from churn_mlops.contracts.profile import parse_reference_profile
from churn_mlops.model_metrics import as_tracking_metrics, ranking_metrics, threshold_metrics
from churn_mlops.monitoring.drift import drift_against_profile, score_drift, summarise_drift
from churn_mlops.pipelines.evaluation.params import BusinessParams
from churn_mlops.pipelines.monitoring.common import (
    IN_WINDOW,
    LABEL,
    PERIOD,
    SCORE,
    champion_features,
)
from churn_mlops.pipelines.monitoring.params import MonitoringParams, parse_monitoring_params
from churn_mlops.pipelines.monitoring.window import assemble_monitoring_rows
from churn_mlops.progress import progress

__all__ = [
    "IN_WINDOW",
    "LABEL",
    "PERIOD",
    "SCORE",
    "assemble_monitoring_rows",
    "build_evidently_report",
    "build_monitoring_metrics",
    "champion_features",
    "compute_drift",
    "compute_performance",
    "decide_retraining",
    "validate_monitoring_parameters",
]

logger = logging.getLogger(__name__)


def validate_monitoring_parameters(monitoring: dict[str, Any]) -> MonitoringParams:
    """Validate the ``monitoring`` parameters once, where they enter the pipeline.

    Raises:
        MonitoringConfigError: a key is unknown, missing or out of range.
    """
    return parse_monitoring_params(monitoring)


# --------------------------------------------------------------------------- drift


def compute_drift(
    monitoring_rows: pd.DataFrame, champion: dict[str, Any], config: MonitoringParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drift of every feature and of the score in the window against the champion's profile.

    Returns:
        The per-feature table (statistics, a flag per statistic, votes, verdict; the score as
        the last row with kind ``score``) and the summary: drifted features, their share,
        dataset drift, score drift and whether the window had enough rows for a verdict.
    """
    profile = parse_reference_profile(champion["reference_profile"])
    window = monitoring_rows.loc[monitoring_rows[IN_WINDOW]]
    names = [s.name for s in champion_features(champion)]
    features = drift_against_profile(profile, window, config.drift, features=names)
    score = score_drift(profile, window[SCORE].to_numpy(dtype=float), config.drift)
    score["feature"], score["kind"] = SCORE, "score"
    summary = summarise_drift(features, config.drift)
    # A verdict needs the window's minimum rows and at least one feature with enough samples.
    enough = len(window) >= config.window.min_rows and not summary["insufficient_data"]
    summary.update(
        score_drift=bool(score["drifted"].iloc[0]),
        score_psi=float(score["psi"].iloc[0]),
        rows=len(window),
        enough_rows=enough,
    )
    if not enough:
        summary.update(dataset_drift=False, score_drift=False)
    table = pd.concat([features, score], ignore_index=True)
    logger.info(
        "Drift: %d of %d features drifted %s; dataset drift %s; score drift %s",
        summary["n_drifted"],
        summary["n_features"],
        summary["drifted_features"],
        summary["dataset_drift"],
        summary["score_drift"],
    )
    return table, summary


# --------------------------------------------------------------------------- performance


def _bootstrap_se(y: np.ndarray, s: np.ndarray, metric: str, samples: int, seed: int) -> float:
    """Standard error of ``metric`` on (y, s), by resampling rows with replacement.

    ROC AUC is computed for all resamples at once from ranks (Mann-Whitney U); the other
    metrics go through ``ranking_metrics`` one resample at a time.
    """
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, (samples, y.size))
    ys = y[idx]
    positives = ys.sum(axis=1)
    usable = (positives > 0) & (positives < y.size)
    if usable.sum() < 2:
        return math.inf
    if metric == "roc_auc":
        ranks = rankdata(s[idx][usable], axis=1)
        pos = positives[usable]
        neg = y.size - pos
        values = ((ranks * ys[usable]).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
    else:
        values = np.array(
            [ranking_metrics(ys[i], s[idx[i]])[metric] for i in np.flatnonzero(usable)]
        )
    return float(np.std(values, ddof=1))


def _net_value(y: np.ndarray, s: np.ndarray, threshold: float, biz: BusinessParams) -> float:
    """Expected net value of the offers the threshold sends (as in the evaluation pipeline)."""
    flagged = s >= threshold
    gain = biz.offer_success_rate * biz.retained_customer_value
    return float(gain * y[flagged].sum() - biz.offer_cost * flagged.sum())


def _month_performance(
    period: Any, group: pd.DataFrame, threshold: float, biz: BusinessParams, perf: Any
) -> dict[str, Any]:
    """One calendar month's row of the performance table."""
    labelled = group.loc[group[LABEL].notna()]
    y = labelled[LABEL].to_numpy(dtype=int)
    s = labelled[SCORE].to_numpy(dtype=float)
    row: dict[str, Any] = {
        PERIOD: period,
        "in_window": bool(group[IN_WINDOW].any()),
        "rows": len(group),
        "labelled": len(labelled),
        "positives": int(y.sum()),
        "mean_score": float(group[SCORE].mean()),
    }
    row["evaluable"] = bool(
        len(labelled) >= perf.min_labelled and row["positives"] >= perf.min_positives
    )
    if len(labelled):
        net = _net_value(y, s, threshold, biz)
        row.update(ranking_metrics(y, s))
        row.update(threshold_metrics(y, s, threshold))
        row.update(net_value=net, net_value_per_customer=net / len(labelled))
    return row


def _window_performance(
    window_rows: pd.DataFrame,
    reference: Any,
    threshold: float,
    biz: BusinessParams,
    perf: Any,
) -> dict[str, Any]:
    """The window's metric, net value and (when evaluable) its drop against the reference."""
    y = window_rows[LABEL].to_numpy(dtype=int)
    s = window_rows[SCORE].to_numpy(dtype=float)
    net = _net_value(y, s, threshold, biz)
    out: dict[str, Any] = {"window_net_value": net, "window_net_value_per_customer": net / len(y)}
    evaluable = len(y) >= perf.min_labelled and int(y.sum()) >= perf.min_positives
    current = ranking_metrics(y, s)[perf.metric]
    out.update(current=current, evaluable=bool(evaluable and math.isfinite(current)))
    if reference is not None and out["evaluable"]:
        se = _bootstrap_se(y, s, perf.metric, perf.bootstrap_samples, perf.seed)
        drop = float(reference) - current
        z = drop / se if se > 0 else math.inf
        out.update(drop=drop, standard_error=se, drop_z=z)
        out["performance_drop"] = bool(drop > perf.max_drop and z >= perf.min_z)
    return out


def compute_performance(
    monitoring_rows: pd.DataFrame,
    champion: dict[str, Any],
    business: dict[str, Any],
    config: MonitoringParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Model metrics per calendar month on the rows whose label has arrived.

    The business metric is the expected net value of the retention offers the model's
    threshold would send: ``offer_success_rate × retained_customer_value`` per flagged
    churner minus ``offer_cost`` per flagged customer (as in the evaluation pipeline).

    Returns:
        One row per month (``rows``, ``labelled``, ``positives``, ranking and threshold metrics,
        ``net_value``, ``net_value_per_customer``, ``in_window``, ``evaluable``) and a summary
        comparing the window's metric with the champion's test metric.
    """
    biz = BusinessParams.model_validate(business)
    perf = config.performance
    threshold = float(champion["model_metadata"].get("threshold", 0.5))
    records = [
        _month_performance(period, group, threshold, biz, perf)
        for period, group in monitoring_rows.groupby(PERIOD, sort=True)
    ]
    table = pd.DataFrame.from_records(records)
    reference = champion["model_metadata"].get("metrics", {}).get(perf.metric)
    window_rows = monitoring_rows.loc[monitoring_rows[IN_WINDOW] & monitoring_rows[LABEL].notna()]
    summary: dict[str, Any] = {
        "metric": perf.metric,
        "reference": float(reference) if reference is not None else None,
        "threshold": threshold,
        "window_labelled": len(window_rows),
        "window_positives": int(window_rows[LABEL].sum()) if len(window_rows) else 0,
        "current": None,
        "drop": None,
        "evaluable": False,
        "performance_drop": False,
    }
    if len(window_rows):
        summary.update(_window_performance(window_rows, reference, threshold, biz, perf))
    logger.info(
        "Performance: %s %s in the window vs %s at promotion (drop %s, evaluable %s)",
        perf.metric,
        summary["current"],
        summary["reference"],
        summary["drop"],
        summary["evaluable"],
    )
    return table, summary


# --------------------------------------------------------------------------- decision


def _age_days(champion: dict[str, Any], now: datetime) -> float:
    registered = champion.get("registered_at")
    if registered is None:
        return 0.0
    registered = pd.Timestamp(registered)
    registered = registered.tz_localize("UTC") if registered.tzinfo is None else registered
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts
    return max((now_ts - registered) / timedelta(days=1), 0.0)


def _triggers(
    drift_summary: dict[str, Any],
    perf: dict[str, Any],
    champion: dict[str, Any],
    age: float,
    config: MonitoringParams,
) -> dict[str, dict[str, Any]]:
    """Each retraining trigger (schedule, drift, performance) with ``fired`` and ``reason``."""
    rt = config.retraining
    drifted = drift_summary["drifted_features"]
    triggers: dict[str, dict[str, Any]] = {}
    fired = rt.schedule.enabled and age > rt.schedule.max_model_age_days
    triggers["schedule"] = {
        "fired": bool(fired),
        "reason": f"champion v{champion['version']} is {age:.0f} days old "
        f"(limit {rt.schedule.max_model_age_days})",
    }
    drift_reasons = []
    if len(drifted) >= rt.drift.min_drifted_features:
        drift_reasons.append(f"{len(drifted)} feature(s) drifted: {', '.join(drifted)}")
    if rt.drift.on_dataset_drift and drift_summary["dataset_drift"]:
        drift_reasons.append(f"dataset drift (share {drift_summary['drift_share']:.2f})")
    if rt.drift.on_score_drift and drift_summary["score_drift"]:
        drift_reasons.append(f"score drift (PSI {drift_summary['score_psi']:.3f})")
    triggers["drift"] = {
        "fired": bool(rt.drift.enabled and drift_summary["enough_rows"] and drift_reasons),
        "reason": (
            "; ".join(drift_reasons) or "no feature, dataset or score drift"
            if drift_summary["enough_rows"]
            else f"insufficient data: {drift_summary['rows']} row(s) in the window"
        ),
    }
    triggers["performance"] = {
        "fired": bool(rt.performance.enabled and perf["performance_drop"]),
        "reason": (
            f"{perf['metric']} {perf['current']:.4f} in the window vs {perf['reference']:.4f} "
            f"at promotion (drop {perf['drop']:.4f} = {perf['drop_z']:.1f} standard errors; limits "
            f"{config.performance.max_drop} and {config.performance.min_z} SE)"
            if perf["drop"] is not None
            else f"insufficient data: {perf['metric']} not evaluable "
            f"({perf['window_labelled']} labelled rows, {perf['window_positives']} churners)"
        ),
    }
    return triggers


def _trigger_id(
    champion: dict[str, Any], window_info: dict[str, Any], fired_names: list[str]
) -> str:
    # The champion version is left out on purpose: after a retrain (promoted or not) the
    # same window must not trigger again; the next window (new data) is a new trigger.
    key = {
        "model_name": champion["model_name"],
        "window": [window_info["source"], window_info["start"], window_info["end"]],
        "triggers": fired_names,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def decide_retraining(
    diagnosis: dict[str, Any],
    drift_summary: dict[str, Any],
    performance_summary: dict[str, Any],
    window_info: dict[str, Any],
    champion: dict[str, Any],
    clock: datetime,
    config: MonitoringParams,
) -> dict[str, Any]:
    """Decide whether to retrain, with the reasons, from the triggers in the parameters.

    Triggers: ``schedule`` (the champion is older than ``max_model_age_days``), ``drift``
    (enough drifted features, dataset drift or score drift) and ``performance`` (delayed-label
    metric fell by more than ``max_drop``). With ``block_on_data_issues``, a data-quality,
    feature-change or freshness finding blocks retraining: fix the data, then retrain.

    Returns:
        The decision: ``retrain``, ``blocked_by``, each trigger with ``fired`` and ``reason``,
        ``reasons``, the champion and window it was made for, and a ``trigger_id`` that is the
        same for the same model, window and fired triggers (continuous training retrains at
        most once per ``trigger_id``).
    """
    rt = config.retraining
    age = _age_days(champion, clock)
    triggers = _triggers(drift_summary, performance_summary, champion, age, config)
    findings = diagnosis["findings"]
    blocked_by = [
        name
        for name in ("data_quality", "feature_change", "pipeline_freshness")
        if rt.block_on_data_issues and findings[name]["applies"]
    ]
    fired_names = sorted(name for name, t in triggers.items() if t["fired"])
    retrain = bool(fired_names) and not blocked_by
    reasons = [f"{name}: {triggers[name]['reason']}" for name in fired_names]
    reasons += [f"blocked by {name}: {findings[name]['summary']}" for name in blocked_by]
    trigger_id = _trigger_id(champion, window_info, fired_names) if fired_names else None
    decision = {
        "retrain": retrain,
        "trigger_id": trigger_id,
        "fired_triggers": fired_names,
        "blocked_by": blocked_by,
        "triggers": triggers,
        "reasons": reasons or ["no trigger fired"],
        "champion": {
            "model_name": champion["model_name"],
            "version": str(champion["version"]),
            "run_id": champion.get("run_id"),
            "age_days": round(age, 2),
        },
        "window": {k: window_info[k] for k in ("source", "start", "end", "rows")},
        "decided_at": pd.Timestamp(clock).isoformat(),
    }
    logger.info(
        "Retraining decision: %s (%s)", "RETRAIN" if retrain else "no retrain", decision["reasons"]
    )
    return decision


# --------------------------------------------------------------------------- metrics


def build_monitoring_metrics(
    drift_table: pd.DataFrame,
    drift_summary: dict[str, Any],
    performance_summary: dict[str, Any],
    window_info: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """Drift and performance figures shaped for ``MlflowMetricsHistoryDataset``.

    Names: ``drift.<feature>.<psi|kl|wasserstein|ks_statistic|chi2_statistic>``,
    ``drift.<feature>.drifted`` (0/1), ``drift.share``, ``drift.n_drifted``,
    ``drift.dataset_drift``, ``performance.current``, ``performance.drop``,
    ``performance.net_value_per_customer`` and ``window.rows``.
    """
    metrics: dict[str, float] = {}
    for row in drift_table.itertuples(index=False):
        for stat in ("psi", "kl", "wasserstein", "ks_statistic", "chi2_statistic"):
            value = getattr(row, stat)
            if value is not None and math.isfinite(value):
                metrics[f"drift.{row.feature}.{stat}"] = float(value)
        metrics[f"drift.{row.feature}.drifted"] = float(bool(row.drifted))
    metrics["drift.share"] = float(drift_summary["drift_share"])
    metrics["drift.n_drifted"] = float(drift_summary["n_drifted"])
    metrics["drift.dataset_drift"] = float(drift_summary["dataset_drift"])
    for key in ("current", "drop", "window_net_value_per_customer"):
        value = performance_summary.get(key)
        if value is not None:
            metrics[f"performance.{key.replace('window_', '')}"] = float(value)
    metrics["window.rows"] = float(window_info["rows"])
    return as_tracking_metrics(metrics)


# --------------------------------------------------------------------------- evidently


def build_evidently_report(
    monitoring_rows: pd.DataFrame, champion: dict[str, Any], config: MonitoringParams
) -> str:
    """Evidently's DataDriftPreset and DataSummaryPreset of the window vs the months before it.

    Evidently needs reference *rows*; the history months before the window (sampled to
    ``reference_sample.max_rows``) serve, while the thresholded verdicts of this pipeline use
    the champion's reference profile. Returns the report as standalone HTML.
    """
    specs = champion_features(champion)
    names = [s.name for s in specs]
    columns = [*names, SCORE]
    current = monitoring_rows.loc[monitoring_rows[IN_WINDOW], columns].reset_index(drop=True)
    reference = monitoring_rows.loc[~monitoring_rows[IN_WINDOW], columns]
    if not config.evidently.enabled or reference.empty or current.empty:
        why = (
            "disabled in parameters"
            if not config.evidently.enabled
            else (
                "no history rows before the window to serve as reference"
                if reference.empty
                else "no rows in the window"
            )
        )
        return f"<html><body><h1>Evidently report skipped</h1><p>{why}.</p></body></html>"
    if len(reference) > config.reference_sample.max_rows:
        reference = reference.sample(
            config.reference_sample.max_rows, random_state=config.reference_sample.seed
        )
    reference = reference.reset_index(drop=True)
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    numeric = [s.name for s in specs if s.kind == "numeric"] + [SCORE]
    categorical = [s.name for s in specs if s.kind == "categorical"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def as_dataset(frame: pd.DataFrame) -> Any:
        typed = frame.astype({c: "float64" for c in numeric}).astype(
            {c: "object" for c in categorical}
        )
        return Dataset.from_pandas(typed, data_definition=definition)

    with progress(3, "monitoring report", "step") as bar:
        datasets = {"reference_data": as_dataset(reference), "current_data": as_dataset(current)}
        bar.update(1)
        snapshot = Report([DataDriftPreset(), DataSummaryPreset()]).run(**datasets)
        bar.update(1)
        html: str = snapshot.get_html_str(as_iframe=False)
        bar.update(1)
    return html

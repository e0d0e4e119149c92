"""Nodes of the ``monitoring`` pipeline that explain a degradation: data quality, feature
changes, pipeline freshness, the diagnosis that weighs them with drift and performance, and its
Markdown report (the runbook for "accuracy dropped from 95 % to 70 %").
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.contracts.features import FeatureSpec
from churn_mlops.contracts.profile import NumericReference, parse_reference_profile
from churn_mlops.pipelines.monitoring.common import IN_WINDOW, champion_features
from churn_mlops.pipelines.monitoring.params import MonitoringParams

logger = logging.getLogger(__name__)

THIS_PIPELINE = "monitoring"
FINDINGS = ("data_drift", "concept_drift", "data_quality", "feature_change", "pipeline_freshness")

ACTIONS = {
    "data_drift": "The population moved: check the drifted features' business cause; retrain on "
    "the recent window so the model learns the new population (continuous training does it "
    "when the drift trigger fires).",
    "concept_drift": "Inputs look the same but outcomes changed: the relation between features and "
    "churn moved. Retrain on recent labelled data; review features whose effect may have "
    "changed (SHAP in the new model card vs the champion's).",
    "data_quality": "Fix the data before retraining: find the producer of the nulls / invalid "
    "values (validation report and quarantine table name table, column and rows); retraining "
    "on broken data would teach the model the bug.",
    "feature_change": "A feature's definition or unit changed upstream (schema or scale). Restore "
    "the contract (convert units, rename back) or version the feature and retrain deliberately; "
    "do not let continuous training learn from the mix.",
    "pipeline_freshness": "Data is stale or a pipeline failed: re-run the failed pipeline "
    "(MLflow run named below), check the data delivery, then monitor again.",
}


# --------------------------------------------------------------------------- data quality


def _scale_ratio(ref: NumericReference, values: np.ndarray) -> float:
    """How many times larger the current values are than training's, or NaN when unclear.

    Two estimates must agree: the geometric median of current quantiles over the reference
    profile's positive bin edges (robust to outliers) and the ratio of the means (robust for
    count features, whose quantiles jump between integers). The one closer to 1 is returned,
    so that only a change both see counts.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0 or not ref.mean > 0 or not finite.mean() > 0:
        return math.nan
    mean_ratio = float(finite.mean() / ref.mean)
    levels = np.cumsum(ref.frequencies)[:-1]
    usable = ref.inner_edges > 0
    if not usable.any():
        return mean_ratio
    current = np.quantile(finite, np.clip(levels[usable], 0, 1))
    ok = current > 0
    if not ok.any():
        return mean_ratio
    quantile_ratio = float(np.exp(np.median(np.log(current[ok] / ref.inner_edges[usable][ok]))))
    if (quantile_ratio > 1) != (mean_ratio > 1):
        return 1.0
    return min(quantile_ratio, mean_ratio, key=lambda r: abs(math.log(r)))


def _quarantine_findings(
    validation_report: dict[str, Any] | None, config: MonitoringParams
) -> list[dict[str, Any]]:
    if not validation_report:
        return []
    tables = validation_report.get("tables", {})
    out = []
    for failure in validation_report.get("failures", []):
        count = failure.get("count") or 0
        raw_rows = tables.get(failure.get("table"), {}).get("rows_raw") or 0
        share = count / raw_rows if raw_rows else math.nan
        out.append(
            {
                "table": failure.get("table"),
                "column": failure.get("column"),
                "rule": failure.get("rule"),
                "severity": failure.get("severity"),
                "expected": failure.get("expected"),
                "count": int(count),
                "rows_raw": int(raw_rows),
                "share": share,
                "fires": bool(
                    failure.get("severity") == "hard"
                    or (math.isfinite(share) and share > config.data_quality.max_quarantined_share)
                ),
            }
        )
    return out


def _numeric_quality(
    spec: FeatureSpec, numbers: np.ndarray, ref: Any, n: int, dq: Any
) -> dict[str, Any]:
    """Out-of-range share against the contract, training range and scale ratio of a column."""
    low = numbers < spec.min if spec.min is not None else np.zeros(numbers.size, bool)
    high = numbers > spec.max if spec.max is not None else np.zeros(numbers.size, bool)
    bad = low | high
    record: dict[str, Any] = {
        "out_of_range_share": float(bad.sum() / n) if n else math.nan,
        "out_of_range_examples": sorted({float(v) for v in numbers[bad][:5]}),
        "allowed_range": [spec.min, spec.max],
    }
    if isinstance(ref, NumericReference) and numbers.size:
        ratio = _scale_ratio(ref, numbers)
        record["scale_ratio"] = ratio
        record["training_range"] = [ref.min, ref.max]
        record["beyond_training_range_share"] = float(
            ((numbers < ref.min) | (numbers > ref.max)).mean()
        )
        if math.isfinite(ratio) and (
            ratio >= dq.unit_change_min_ratio or ratio <= 1 / dq.unit_change_min_ratio
        ):
            power = 10 ** round(math.log10(ratio))
            record["scale_change"] = (
                f"`{spec.name}` changed scale: its quantiles are x{ratio:.3g} the "
                f"training ones (nearest power of ten: x{power:g}; mean "
                f"{numbers.mean():.4g} vs {ref.mean:.4g} in training) — a unit change "
                "such as amounts in cents instead of currency units"
            )
    return record


def _feature_quality(
    spec: FeatureSpec, values: pd.Series, ref: Any, n: int, dq: Any
) -> dict[str, Any]:
    """One feature's quality record (``scale_change`` holds a unit-change sentence, if any)."""
    null_share = float(values.isna().mean()) if n else math.nan
    record: dict[str, Any] = {
        "feature": spec.name,
        "kind": spec.kind,
        "null_share": null_share,
        "reference_null_share": ref.null_share if ref is not None else 0.0,
    }
    present = values.dropna()
    if spec.kind == "numeric":
        numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
        record.update(_numeric_quality(spec, numbers, ref, n, dq))
    else:
        text = present.astype(str)
        allowed = set(spec.categories or [])
        unknown = text[~text.isin(allowed)].value_counts()
        seen = set(ref.frequencies) if ref is not None and ref.kind == "categorical" else set()
        unseen = sorted(set(text.unique()) - seen - set(unknown.index))
        record["out_of_range_share"] = float(unknown.sum() / n) if n else math.nan
        record["unknown_categories"] = {str(k): int(v) for k, v in unknown.head(10).items()}
        record["categories_new_since_training"] = unseen
    return record


def _feature_issues(spec: FeatureSpec, record: dict[str, Any], n: int, dq: Any) -> list[str]:
    """Sentences for a null share or an out-of-range share above the data-quality limits."""
    issues = []
    null_share, ref_null = record["null_share"], record["reference_null_share"]
    if n and null_share - ref_null > dq.max_null_share_increase:
        issues.append(
            f"`{spec.name}` is null in {null_share:.1%} of the window's rows "
            f"(training: {ref_null:.1%})"
        )
    if n and record["out_of_range_share"] > dq.max_out_of_range_share:
        what = (
            f"outside [{spec.min}, {spec.max}] (e.g. {record['out_of_range_examples']})"
            if spec.kind == "numeric"
            else f"not an allowed category ({record['unknown_categories']})"
        )
        issues.append(f"`{spec.name}`: {record['out_of_range_share']:.1%} of rows {what}")
    return issues


def _log_schema_changes(window_info: dict[str, Any], missing: list[str]) -> list[str]:
    """Type and schema changes seen in the prediction log."""
    changes = [
        f"`{name}`: {count} logged value(s) are not numbers (type change upstream?)"
        for name, count in (window_info.get("unparsable_values") or {}).items()
        if count
    ]
    if missing:
        changes.append(f"feature(s) {missing} are missing from the prediction log (schema)")
    return changes


def check_data_quality(
    monitoring_rows: pd.DataFrame,
    champion: dict[str, Any],
    window_info: dict[str, Any],
    validation_report: dict[str, Any] | None,
    config: MonitoringParams,
) -> dict[str, Any]:
    """Nulls, out-of-range values, unknown categories, unit/scale and schema changes.

    Per feature in the window: null share against the reference's, share of values outside
    the feature contract (``min``/``max``, allowed categories), categories never seen in
    training, and the scale ratio (current quantiles over the reference profile's bin edges;
    ``x100`` when amounts arrive in cents). Plus the data_processing validation report (rows
    quarantined per rule) and, for the prediction log, unreadable lines and values.

    Returns:
        ``features`` (one record per feature), ``quarantine``, ``log_parse_errors``,
        ``missing_features``, ``quality_issues`` and ``feature_changes`` (sentences with the
        evidence).
    """
    dq = config.data_quality
    profile = parse_reference_profile(champion["reference_profile"])
    window = monitoring_rows.loc[monitoring_rows[IN_WINDOW]]
    n = len(window)
    records = []
    quality_issues: list[str] = []
    feature_changes: list[str] = []
    for spec in champion_features(champion):
        values = window[spec.name] if spec.name in window else pd.Series(dtype=float)
        record = _feature_quality(spec, values, profile.features.get(spec.name), n, dq)
        if "scale_change" in record:
            feature_changes.append(record.pop("scale_change"))
        quality_issues.extend(_feature_issues(spec, record, n, dq))
        records.append(record)

    quarantine = _quarantine_findings(validation_report, config)
    for item in quarantine:
        if item["fires"]:
            quality_issues.append(
                f"data_processing {'stopped on' if item['severity'] == 'hard' else 'quarantined'} "
                f"{item['count']} row(s) of `{item['table']}` ({item['share']:.2%}) breaking "
                f"`{item['column']}` {item['rule']} (expected {item['expected']})"
            )
    parse_errors = int(window_info.get("log_parse_errors", 0))
    if parse_errors:
        quality_issues.append(f"{parse_errors} prediction-log line(s) could not be parsed")
    missing = list(window_info.get("missing_features") or [])
    feature_changes.extend(_log_schema_changes(window_info, missing))
    logger.info(
        "Data quality: %d issue(s), %d feature change(s)", len(quality_issues), len(feature_changes)
    )
    return {
        "features": records,
        "quarantine": quarantine,
        "validation_passed": validation_report.get("passed") if validation_report else None,
        "log_parse_errors": parse_errors,
        "missing_features": missing,
        "quality_issues": quality_issues,
        "feature_changes": feature_changes,
    }


# --------------------------------------------------------------------------- freshness


def _month_gaps(periods: list[str]) -> list[str]:
    if len(periods) < 2:
        return []
    months = pd.PeriodIndex(periods, freq="M")
    full = pd.period_range(months.min(), months.max(), freq="M")
    return [str(p) for p in full.difference(months)]


def check_freshness(
    window_info: dict[str, Any],
    validation_report: dict[str, Any] | None,
    recent_runs: pd.DataFrame | None,
    clock: datetime,
    config: MonitoringParams,
) -> dict[str, Any]:
    """Is the data fresh and did the pipelines run?

    * too few rows in the window (``window.min_rows``);
    * staleness: for the prediction log, time from the latest prediction to ``as_of`` (or
      now); for the feature table, from the latest snapshot to the end of the validated raw
      period less the label horizon;
    * missing months between the first and the latest period;
    * a hard validation failure in the latest data_processing report;
    * pipelines whose latest MLflow run failed.

    Returns:
        ``issues`` (sentences with the evidence), ``staleness_days``, ``missing_periods``,
        ``failed_runs``.
    """
    fr = config.freshness
    issues: list[str] = []
    if window_info["rows"] < config.window.min_rows:
        issues.append(
            f"the window {window_info['start']} .. {window_info['end']} has "
            f"{window_info['rows']} row(s), fewer than window.min_rows = {config.window.min_rows}"
        )
    latest = pd.Timestamp(window_info["latest_record"])
    latest = latest.tz_localize("UTC") if latest.tzinfo is None else latest
    if window_info["source"] == "prediction_log":
        reference = pd.Timestamp(config.window.as_of or clock)
        what = "as of" if config.window.as_of else "now"
    elif validation_report and validation_report.get("period", {}).get("end_date"):
        reference = pd.Timestamp(validation_report["period"]["end_date"]) - pd.Timedelta(
            days=config.performance.label_horizon_days
        )
        what = "the end of the validated raw period less the label horizon"
    else:
        reference, what = latest, "itself"
    reference = reference.tz_localize("UTC") if reference.tzinfo is None else reference
    staleness = max((reference - latest) / pd.Timedelta(days=1), 0.0)
    if staleness > fr.max_staleness_days:
        issues.append(
            f"the latest record ({latest.isoformat()}) is {staleness:.0f} days older than {what} "
            f"({reference.isoformat()}); limit {fr.max_staleness_days} days"
        )
    gaps = _month_gaps(window_info.get("available_periods", []))
    if gaps:
        issues.append(f"no data for month(s) {gaps} between the first and the latest period")
    if validation_report is not None and validation_report.get("passed") is False:
        issues.append("the latest data_processing validation failed on hard rules")
    failed: list[dict[str, Any]] = []
    if recent_runs is not None and len(recent_runs):
        # This run supersedes earlier monitoring runs, failed or not.
        others = recent_runs.loc[recent_runs["run_name"] != THIS_PIPELINE]
        latest_runs = others.sort_values("start_time").groupby("run_name").tail(1)
        for run in latest_runs.loc[latest_runs["status"] == "FAILED"].itertuples(index=False):
            failed.append(
                {"run_name": run.run_name, "run_id": run.run_id, "start_time": str(run.start_time)}
            )
            issues.append(
                f"the latest MLflow run of `{run.run_name}` ({run.run_id}, {run.start_time}) FAILED"
            )
    return {
        "issues": issues,
        "staleness_days": staleness,
        "missing_periods": gaps,
        "failed_runs": failed,
    }


# --------------------------------------------------------------------------- diagnosis


def _drift_evidence(drift_table: pd.DataFrame, limit: int = 8) -> list[str]:
    rows = drift_table.loc[drift_table["drifted"]].sort_values("psi", ascending=False)
    evidence = []
    for row in rows.head(limit).itertuples(index=False):
        parts = [f"PSI {row.psi:.3f}", f"KL {row.kl:.3f}"]
        if row.kind in ("numeric", "score"):
            parts += [
                f"Wasserstein {row.wasserstein:.3f} std",
                f"KS D {row.ks_statistic:.3f} (p {row.ks_p_value:.2g})",
            ]
        else:
            parts.append(f"chi² {row.chi2_statistic:.1f} (p {row.chi2_p_value:.2g})")
        evidence.append(f"`{row.feature}`: {', '.join(parts)}; {row.votes} statistic(s) fired")
    return evidence


def _performance_line(perf: dict[str, Any], config: MonitoringParams) -> str:
    """The window's metric against the promotion metric, in one sentence."""
    if perf["drop"] is None:
        return (
            f"insufficient data: {perf['metric']} not evaluable in the window "
            f"({perf['window_labelled']} labelled rows, {perf['window_positives']} churners)"
        )
    return (
        f"{perf['metric']} {perf['current']:.4f} in the window vs {perf['reference']:.4f} at "
        f"promotion (drop {perf['drop']:.4f} = {perf['drop_z']:.1f} standard errors; limits "
        f"{config.performance.max_drop} and {config.performance.min_z} SE)"
    )


def _concept_drift(
    perf: dict[str, Any],
    perf_line: str,
    performance_table: pd.DataFrame,
    drifted: list[str],
    config: MonitoringParams,
) -> dict[str, Any]:
    """Concept drift applies when performance fell while few inputs drifted; monthly trend."""
    trend = []
    if len(performance_table) and perf["metric"] in performance_table:
        for row in performance_table.itertuples(index=False):
            value = getattr(row, perf["metric"], math.nan)
            if row.labelled:
                trend.append(
                    f"{row.period}: {perf['metric']} {value:.4f} on {row.labelled} labelled rows "
                    f"({row.positives} churners), net value/customer "
                    f"{row.net_value_per_customer:.2f}"
                )
    concept = bool(
        perf["performance_drop"] and len(drifted) <= config.concept_drift.max_drifted_features
    )
    return {
        "applies": concept,
        "summary": (
            f"performance fell while only {len(drifted)} input feature(s) drifted"
            if concept
            else "insufficient data: performance not evaluable"
            if perf["drop"] is None
            else "performance held"
            if not perf["performance_drop"]
            else f"performance fell but {len(drifted)} inputs drifted: data drift explains it"
        ),
        "evidence": [perf_line, *trend],
    }


def diagnose(
    drift_table: pd.DataFrame,
    drift_summary: dict[str, Any],
    performance_table: pd.DataFrame,
    performance_summary: dict[str, Any],
    data_quality: dict[str, Any],
    freshness: dict[str, Any],
    config: MonitoringParams,
) -> dict[str, Any]:
    """Say which explanations apply, each with its evidence and what to do.

    * ``data_drift``: features (or the score) drifted against the training profile;
    * ``concept_drift``: the delayed-label metric fell by more than ``max_drop`` while at most
      ``concept_drift.max_drifted_features`` inputs drifted;
    * ``data_quality``: nulls, invalid values, quarantined rows, unreadable log lines;
    * ``feature_change``: a unit/scale change or a schema change of a feature;
    * ``pipeline_freshness``: stale data, missing months, failed pipeline runs.

    Returns:
        ``findings`` (each ``applies``, ``summary``, ``evidence``, ``action``), ``applies``
        (the names that apply), ``performance_drop`` and a one-line ``headline``.
    """
    perf = performance_summary
    drifted = drift_summary["drifted_features"]
    findings: dict[str, dict[str, Any]] = {}

    drift_evidence = _drift_evidence(drift_table)
    drift_applies = bool(drift_summary["enough_rows"] and (drifted or drift_summary["score_drift"]))
    insufficient = drift_summary.get("insufficient_features", [])
    findings["data_drift"] = {
        "applies": drift_applies,
        "summary": (
            f"{len(drifted)} of {drift_summary['n_features']} features drifted "
            f"({', '.join(drifted) or 'none'}); dataset drift {drift_summary['dataset_drift']}; "
            f"score drift {drift_summary['score_drift']}"
            + (f"; insufficient data for {len(insufficient)} feature(s)" if insufficient else "")
            if drift_summary["enough_rows"]
            else f"insufficient data: {drift_summary['rows']} row(s) in the window, too few "
            "for a drift verdict (window.min_rows, drift.statistics.*.min_samples)"
        ),
        "evidence": drift_evidence or ["no feature's statistics reached their thresholds"],
    }
    perf_line = _performance_line(perf, config)
    findings["concept_drift"] = _concept_drift(perf, perf_line, performance_table, drifted, config)
    quality = data_quality["quality_issues"]
    findings["data_quality"] = {
        "applies": bool(quality),
        "summary": f"{len(quality)} data-quality issue(s)" if quality else "no data-quality issue",
        "evidence": quality or ["nulls, ranges, categories and validation within limits"],
    }
    changes = data_quality["feature_changes"]
    findings["feature_change"] = {
        "applies": bool(changes),
        "summary": f"{len(changes)} feature change(s)" if changes else "no feature change",
        "evidence": changes or ["every feature's scale and schema match training"],
    }
    stale = freshness["issues"]
    findings["pipeline_freshness"] = {
        "applies": bool(stale),
        "summary": f"{len(stale)} freshness/failure issue(s)" if stale else "data fresh, runs ok",
        "evidence": stale or [f"latest data {freshness['staleness_days']:.0f} day(s) behind"],
    }
    for name, finding in findings.items():
        finding["action"] = ACTIONS[name]
    applies = [name for name in FINDINGS if findings[name]["applies"]]
    headline = (
        f"performance dropped ({perf_line}); explained by: {', '.join(applies) or 'nothing found'}"
        if perf["performance_drop"]
        else f"insufficient data ({perf_line}); findings: {', '.join(applies) or 'none'}"
        if perf["drop"] is None
        else f"performance held ({perf_line}); findings: {', '.join(applies) or 'none'}"
    )
    logger.info("Diagnosis: %s", headline)
    return {
        "headline": headline,
        "performance_drop": bool(perf["performance_drop"]),
        "applies": applies,
        "findings": findings,
    }


# --------------------------------------------------------------------------- report

"""Monitoring node: the diagnosis report (Markdown): verdicts first, then the evidence tables."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from churn_mlops.pipelines.monitoring.diagnosis import FINDINGS

DRIFT_COLUMNS = [
    "feature",
    "kind",
    "psi",
    "kl",
    "wasserstein",
    "ks_statistic",
    "ks_p_value",
    "chi2_p_value",
    "null_share_current",
    "votes",
    "drifted",
]
PERFORMANCE_COLUMNS = [
    "period",
    "in_window",
    "rows",
    "labelled",
    "positives",
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "net_value_per_customer",
]
QUALITY_COLUMNS = [
    "feature",
    "null_share",
    "reference_null_share",
    "out_of_range_share",
    "scale_ratio",
    "beyond_training_range_share",
]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}g}"
    return str(value)


def _finding_lines(name: str, finding: dict[str, Any]) -> list[str]:
    mark = "APPLIES" if finding["applies"] else "ok"
    lines = [f"### {name.replace('_', ' ')}: {mark}", "", finding["summary"], ""]
    lines += [f"- {e}" for e in finding["evidence"]]
    if finding["applies"]:
        lines += ["", f"What to do: {finding['action']}"]
    return [*lines, ""]


def _trigger_lines(retrain_decision: dict[str, Any]) -> list[str]:
    lines = ["## Retraining triggers", ""]
    for name, trig in retrain_decision["triggers"].items():
        lines.append(f"- {name}: {'FIRED' if trig['fired'] else 'quiet'} — {trig['reason']}")
    if retrain_decision["blocked_by"]:
        lines.append(f"- blocked by: {', '.join(retrain_decision['blocked_by'])}")
    return lines


def _table(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    present = [c for c in columns if c in frame.columns]
    lines = ["| " + " | ".join(present) + " |", "|" + "---|" * len(present)]
    for row in frame[present].itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return lines


def render_diagnosis_report(
    diagnosis: dict[str, Any],
    retrain_decision: dict[str, Any],
    drift_table: pd.DataFrame,
    performance_table: pd.DataFrame,
    data_quality: dict[str, Any],
    window_info: dict[str, Any],
) -> str:
    """The diagnosis as Markdown: verdicts first, then the evidence tables."""
    champion = retrain_decision["champion"]
    lines = [
        f"# Monitoring diagnosis — {champion['model_name']} v{champion['version']}",
        "",
        f"Window: {window_info['start']} .. {window_info['end']} from `{window_info['source']}` "
        f"({window_info['rows']} rows, {window_info['labelled_share']:.0%} labelled; "
        f"{window_info['history_rows']} history rows). "
        f"Decided at {retrain_decision['decided_at']}.",
        "",
        f"**{diagnosis['headline']}**",
        "",
        f"**Retraining: {'YES' if retrain_decision['retrain'] else 'no'}** — "
        + "; ".join(retrain_decision["reasons"]),
        "",
        "## Checks",
        "",
    ]
    for name in FINDINGS:
        lines += _finding_lines(name, diagnosis["findings"][name])
    lines += _trigger_lines(retrain_decision)
    lines += ["", "## Drift per feature (against the champion's reference profile)", ""]
    lines += _table(drift_table, DRIFT_COLUMNS)
    lines += ["", "## Performance per month (delayed labels)", ""]
    if len(performance_table):
        lines += _table(performance_table, PERFORMANCE_COLUMNS)
    else:
        lines.append("No labelled rows yet.")
    lines += ["", "## Data quality per feature", ""]
    quality = pd.DataFrame(data_quality["features"])
    if len(quality):
        lines += _table(quality, QUALITY_COLUMNS)
    if data_quality["quarantine"]:
        lines += ["", "Validation report (data_processing):", ""]
        lines += _table(
            pd.DataFrame(data_quality["quarantine"]),
            ["table", "column", "rule", "severity", "count", "share"],
        )
    lines.append("")
    return "\n".join(lines)

"""Evaluation nodes: scores, the business threshold, test metrics, calibration, segments."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from churn_mlops.model_metrics import ranking_metrics, threshold_metrics
from churn_mlops.pipelines.evaluation.common import (
    SCORE,
    key_columns,
    require_columns,
)
from churn_mlops.pipelines.evaluation.params import (
    EvaluationSetup,
)
from churn_mlops.pipelines.training.errors import FeatureContractError

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- scores


def predict_churn_scores(
    trained_model: Pipeline,
    split: pd.DataFrame,
    setup: EvaluationSetup,
) -> pd.DataFrame:
    """Score a split with the trained model.

    Returns:
        The split's key columns, label and ``score`` (``predict_proba[:, 1]``), same row order.
    """
    cfg = setup.training
    specs = setup.features
    require_columns(split, [*key_columns(cfg), cfg.target, *[s.name for s in specs]], "split")
    scores = trained_model.predict_proba(split[[s.name for s in specs]])[:, 1]
    return split[[*key_columns(cfg), cfg.target]].assign(**{SCORE: scores})


def choose_decision_threshold(
    validation_predictions: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Choose the score threshold that maximises the expected net value on the validation split.

    Flagging a customer costs ``offer_cost``; flagging a real churner also earns
    ``offer_success_rate * retained_customer_value``. Every distinct validation score is tried;
    if no threshold has a positive net value, nobody is flagged (threshold 1.0).

    Returns:
        The threshold, its net value (total and per scored customer), flagged share, the
        net value of flagging everyone, the business parameters and a net-value curve.
    """
    cfg = setup.evaluation
    tcfg = setup.training
    business = cfg.business
    gain = business.offer_success_rate * business.retained_customer_value
    labels = validation_predictions[tcfg.target].to_numpy(dtype=float)
    scores = validation_predictions[SCORE].to_numpy(dtype=float)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    net = gain * np.cumsum(labels[order]) - business.offer_cost * np.arange(1, len(order) + 1)
    # A threshold flags whole ties: only the last position of each distinct score is a choice.
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    positions = np.flatnonzero(last_of_tie)
    best = positions[np.argmax(net[positions])]
    if net[best] > 0:
        threshold, best_net, flagged = float(sorted_scores[best]), float(net[best]), best + 1
    else:
        threshold, best_net, flagged = 1.0, 0.0, 0
    step = max(1, len(positions) // cfg.threshold.curve_points)
    curve = [
        {
            "threshold": float(sorted_scores[i]),
            "net_value": float(net[i]),
            "flagged_share": float((i + 1) / len(scores)),
        }
        for i in positions[::step]
    ]
    report = {
        "threshold": threshold,
        "chosen_on": "validation",
        "expected_net_value": best_net,
        "net_value_per_customer": best_net / len(scores),
        "flagged_share": flagged / len(scores),
        "net_value_flag_everyone": float(net[-1]),
        "business": business.model_dump(),
        "curve": curve,
    }
    logger.info(
        "Decision threshold %.4f: validation net value %.0f (%.2f per customer), flags %.1f%%",
        threshold,
        best_net,
        report["net_value_per_customer"],
        100 * report["flagged_share"],
    )
    return report


def compute_test_metrics(
    test_predictions: pd.DataFrame,
    decision_threshold: dict[str, Any],
    setup: EvaluationSetup,
) -> dict[str, float]:
    """All test-split metrics: ranking, at the chosen threshold, and the business value.

    Returns:
        ``roc_auc``, ``pr_auc``, ``brier``, ``log_loss``, ``prevalence``, ``pr_auc_lift``,
        ``f1``, ``precision``, ``recall``, ``accuracy``, ``flagged_share``, ``threshold``,
        ``net_value`` (total on test), ``net_value_per_customer`` and ``rows``.
    """
    cfg = setup.evaluation
    tcfg = setup.training
    labels = test_predictions[tcfg.target].to_numpy(dtype=int)
    scores = test_predictions[SCORE].to_numpy(dtype=float)
    threshold = float(decision_threshold["threshold"])
    flagged = scores >= threshold
    gain = cfg.business.offer_success_rate * cfg.business.retained_customer_value
    net = float(gain * labels[flagged].sum() - cfg.business.offer_cost * flagged.sum())
    metrics = {
        **ranking_metrics(labels, scores),
        **threshold_metrics(labels, scores, threshold),
        "threshold": threshold,
        "net_value": net,
        "net_value_per_customer": net / len(labels),
        "rows": float(len(labels)),
    }
    logger.info(
        "Test: PR AUC %.4f, ROC AUC %.4f, F1 %.4f at %.4f, net value %.0f",
        metrics["pr_auc"],
        metrics["roc_auc"],
        metrics["f1"],
        threshold,
        net,
    )
    return metrics


def format_tracking_metrics(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """Shape flat metrics for ``MlflowMetricsHistoryDataset`` (step 0, non-finite dropped)."""
    from churn_mlops.model_metrics import as_tracking_metrics

    return as_tracking_metrics(metrics)


def plot_net_value_curve(decision_threshold: dict[str, Any]) -> Figure:
    """Net value against threshold on the validation split, with the chosen threshold marked."""
    curve = pd.DataFrame(decision_threshold["curve"])
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(curve["threshold"], curve["net_value"], color="tab:blue")
    ax.axvline(decision_threshold["threshold"], color="tab:red", linestyle="--", label="chosen")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("threshold (flag score >= threshold)")
    ax.set_ylabel("expected net value (validation)")
    ax.set_title("Business value of the decision threshold")
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- calibration


def compute_calibration(
    test_predictions: pd.DataFrame,
    setup: EvaluationSetup,
) -> pd.DataFrame:
    """Observed churn rate against mean score per score bin (the calibration curve).

    Returns:
        One row per bin: ``bin``, ``rows``, ``mean_score``, ``observed_rate``,
        ``score_low``, ``score_high``.
    """
    cfg = setup.evaluation
    tcfg = setup.training
    scores = test_predictions[SCORE]
    if cfg.calibration.strategy == "quantile":
        bins = pd.qcut(scores, cfg.calibration.n_bins, labels=False, duplicates="drop")
    else:
        bins = pd.cut(
            scores, np.linspace(0, 1, cfg.calibration.n_bins + 1), labels=False, include_lowest=True
        )
    grouped = test_predictions.assign(bin=bins).groupby("bin", observed=True)
    table = grouped.agg(
        rows=(SCORE, "size"),
        mean_score=(SCORE, "mean"),
        observed_rate=(tcfg.target, "mean"),
        score_low=(SCORE, "min"),
        score_high=(SCORE, "max"),
    ).reset_index()
    table["bin"] = table["bin"].astype(int)
    return table


def plot_calibration_curve(calibration_table: pd.DataFrame) -> Figure:
    """Reliability diagram: observed churn rate vs mean predicted score per bin."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    top = float(
        max(calibration_table["mean_score"].max(), calibration_table["observed_rate"].max())
    )
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfectly calibrated")
    ax.plot(
        calibration_table["mean_score"],
        calibration_table["observed_rate"],
        marker="o",
        label="model",
    )
    ax.set_xlabel("mean predicted churn score")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration on the test split")
    ax.legend()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- segments


def compute_segment_metrics(
    test_predictions: pd.DataFrame,
    test_split: pd.DataFrame,
    decision_threshold: dict[str, Any],
    setup: EvaluationSetup,
) -> pd.DataFrame:
    """Metrics per segment: each value of the segment columns and each age band.

    Returns:
        One row per (segment, value) with ``rows``, ``churn_rate``, ``mean_score``,
        ``roc_auc``, ``pr_auc``, ``precision``, ``recall`` and ``flagged_share`` (metrics are
        NaN for segments under ``min_rows`` rows or with a single class).
    """
    cfg = setup.evaluation
    tcfg = setup.training
    seg = cfg.segments
    age = [seg.age_column] if seg.age_column is not None else []
    require_columns(test_split, [*seg.columns, *age], "test_split")
    if len(test_split) != len(test_predictions):
        raise FeatureContractError(
            f"test_split has {len(test_split)} rows but test_predictions {len(test_predictions)}; "
            "they must be the same rows in the same order"
        )
    edges = [*seg.age_band_edges, np.inf]
    labels = [
        f"{int(lo)}-{int(hi) - 1}" if np.isfinite(hi) else f"{int(lo)}+"
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    segments = {c: test_split[c].astype(str) for c in seg.columns}
    if seg.age_column is not None:
        bands = pd.cut(test_split[seg.age_column], edges, right=False, labels=labels)
        segments["age_band"] = bands.astype(str)
    threshold = float(decision_threshold["threshold"])
    y = test_predictions[tcfg.target].to_numpy(dtype=int)
    p = test_predictions[SCORE].to_numpy(dtype=float)
    rows = []
    for segment, values in segments.items():
        for value in sorted(values.unique()):
            mask = (values == value).to_numpy()
            ys, ps = y[mask], p[mask]
            enough = mask.sum() >= seg.min_rows and 0 < ys.sum() < ys.size
            ranking = ranking_metrics(ys, ps) if enough else {}
            at_threshold = threshold_metrics(ys, ps, threshold) if enough else {}
            rows.append(
                {
                    "segment": segment,
                    "value": value,
                    "rows": int(mask.sum()),
                    "churn_rate": float(ys.mean()),
                    "mean_score": float(ps.mean()),
                    "roc_auc": ranking.get("roc_auc", np.nan),
                    "pr_auc": ranking.get("pr_auc", np.nan),
                    "precision": at_threshold.get("precision", np.nan),
                    "recall": at_threshold.get("recall", np.nan),
                    "flagged_share": float((ps >= threshold).mean()),
                }
            )
    return pd.DataFrame(rows)

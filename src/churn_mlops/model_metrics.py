"""Classification metrics shared by training (validation), evaluation (test) and the gate.

One implementation so that a candidate, the challenger and the champion are always scored the
same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

#: Probabilities are clipped to this distance from 0 and 1 before the log loss.
_EPS = 1e-7


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Threshold-free metrics of churn scores against 0/1 labels.

    Args:
        labels: True labels (0/1).
        scores: Predicted churn probabilities.

    Returns:
        ``roc_auc``, ``pr_auc`` (average precision), ``brier``, ``log_loss``,
        ``prevalence`` (share of positives) and ``pr_auc_lift`` (PR AUC over prevalence,
        so 1.0 is a random ranking whatever the churn rate). AUCs are ``nan`` when only one
        class is present.
    """
    y = np.asarray(labels, dtype=int)
    p = np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)
    prevalence = float(y.mean()) if y.size else float("nan")
    both_classes = 0 < y.sum() < y.size
    pr_auc = float(average_precision_score(y, p)) if both_classes else float("nan")
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "pr_auc": pr_auc,
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "prevalence": prevalence,
        "pr_auc_lift": pr_auc / prevalence if both_classes else float("nan"),
    }


def threshold_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Metrics of the decision ``score >= threshold``.

    Args:
        labels: True labels (0/1).
        scores: Predicted churn probabilities.
        threshold: Scores at or above it are flagged as churners.

    Returns:
        ``f1``, ``precision``, ``recall``, ``accuracy`` and ``flagged_share``.
    """
    y = np.asarray(labels, dtype=int)
    flagged = (np.asarray(scores, dtype=float) >= threshold).astype(int)
    return {
        "f1": float(f1_score(y, flagged, zero_division=0)),
        "precision": float(precision_score(y, flagged, zero_division=0)),
        "recall": float(recall_score(y, flagged, zero_division=0)),
        "accuracy": float(accuracy_score(y, flagged)),
        "flagged_share": float(flagged.mean()) if flagged.size else float("nan"),
    }


def as_tracking_metrics(metrics: Mapping[str, float], *, step: int = 0) -> dict[str, dict]:
    """Shape a flat metric mapping for ``MlflowMetricsHistoryDataset`` (non-finite values dropped).

    Args:
        metrics: Metric name to value.
        step: MLflow step of every value.

    Returns:
        ``{name: {"value": value, "step": step}}``.
    """
    return {
        name: {"value": float(value), "step": step}
        for name, value in metrics.items()
        if value is not None and np.isfinite(value)
    }

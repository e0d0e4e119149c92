"""Evaluation nodes: score the current champion and decide the promotion gate."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from churn_mlops.model_metrics import ranking_metrics
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.evaluation.params import (
    EvaluationSetup,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- gate


def score_champion(
    champion_model: dict[str, Any] | None,
    test_split: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Score the current champion on the same test split as the challenger.

    Returns:
        ``{"version": None}`` when there is no champion yet; else ``{"version", "run_id",
        "metrics"}``, with ``"error"`` instead of metrics when the champion cannot score this
        split (e.g. the feature list changed since it was trained).
    """
    if champion_model is None:
        return {"version": None, "run_id": None}
    cfg = setup.training
    names = [s.name for s in setup.features]
    result = {"version": champion_model["version"], "run_id": champion_model.get("run_id")}
    try:
        scores = champion_model["model"].predict_proba(test_split[names])[:, 1]
    except (KeyError, ValueError) as exc:
        logger.warning("Champion v%s cannot score the test split: %s", result["version"], exc)
        return {**result, "error": f"{type(exc).__name__}: {exc}"}
    metrics = ranking_metrics(test_split[cfg.target].to_numpy(dtype=int), scores)
    logger.info(
        "Champion v%s on the test split: PR AUC %.4f, ROC AUC %.4f",
        result["version"],
        metrics["pr_auc"],
        metrics["roc_auc"],
    )
    return {**result, "metrics": metrics}


def _minimum_checks(
    test_metrics: dict[str, float], minimums: dict[str, float]
) -> list[dict[str, Any]]:
    """One check per absolute minimum of ``evaluation.gate.minimums`` (NaN fails)."""
    checks = []
    for metric, minimum in sorted(minimums.items()):
        if metric not in test_metrics:
            raise EvaluationConfigError(
                f"evaluation.gate.minimums names {metric!r}, which is not a test metric; "
                f"available: {sorted(test_metrics)}"
            )
        value = float(test_metrics[metric])
        checks.append(
            {
                "name": f"minimum:{metric}",
                "passed": bool(value >= minimum),  # NaN fails
                "detail": f"{metric} {value:.4f} {'>=' if value >= minimum else '<'} {minimum}",
            }
        )
    return checks


def _champion_check(
    champion_scores: dict[str, Any], challenger_value: float, gate: Any
) -> tuple[dict[str, Any], float | None]:
    """The comparison with the champion on the same test split, and the champion's value."""
    version = champion_scores.get("version")
    if version is None:
        return {"name": "champion", "passed": True, "detail": "no champion yet: first model"}, None
    if "metrics" not in champion_scores:
        detail = (
            f"champion v{version} cannot score the current test split "
            f"({champion_scores.get('error')}); the minimums decide"
        )
        return {"name": "champion", "passed": True, "detail": detail}, None
    champion_value = float(champion_scores["metrics"][gate.metric])
    floor = champion_value - gate.max_degradation
    detail = (
        f"{gate.metric} {challenger_value:.4f} vs champion v{version} "
        f"{champion_value:.4f} (allowed down to {floor:.4f})"
    )
    return {"name": "champion", "passed": bool(challenger_value >= floor), "detail": detail}, (
        champion_value
    )


def decide_promotion(
    test_metrics: dict[str, float],
    champion_scores: dict[str, Any],
    behaviour_report: dict[str, Any],
    shap_additivity: dict[str, Any],
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """The gate: should the challenger become champion?

    It must meet every absolute minimum, pass the behaviour checks (when required), have
    explanations that add up, and trail the champion's ``metric`` on the same test split by at
    most ``max_degradation``. With no champion yet, the minimums decide alone.

    Returns:
        ``{"promote", "reason", "checks", "metric", "challenger_value", "champion_value",
        "champion_version"}``; ``reason`` names every failed check with its values.
    """
    gate = setup.evaluation.gate
    checks = _minimum_checks(test_metrics, gate.minimums)
    if gate.require_behaviour_checks:
        ran = [c for c in behaviour_report["checks"] if not c.get("skipped")]
        failed = [c["name"] for c in ran if not c["passed"]]
        skipped = [c["name"] for c in behaviour_report["checks"] if c.get("skipped")]
        checks.append(
            {
                "name": "behaviour",
                "passed": not failed,
                "detail": (
                    "all behaviour checks passed"
                    if not failed
                    else f"failed behaviour checks: {failed}"
                )
                + (f" (skipped: {skipped})" if skipped else ""),
            }
        )
    checks.append(
        {
            "name": "explanations",
            "passed": bool(shap_additivity["passed"]),
            "detail": f"SHAP additivity error {shap_additivity['max_abs_error']:.2e} "
            f"(tolerance {shap_additivity['tolerance']:.0e})",
        }
    )
    challenger_value = float(test_metrics[gate.metric])
    champion_check, champion_value = _champion_check(champion_scores, challenger_value, gate)
    checks.append(champion_check)
    champion_version = champion_scores.get("version")
    promote = all(c["passed"] for c in checks)
    failed = [c["detail"] for c in checks if not c["passed"]]
    reason = (
        "passed the gate: " + "; ".join(c["detail"] for c in checks)
        if promote
        else "refused: " + "; ".join(failed)
    )
    (logger.info if promote else logger.warning)("Gate decision: %s", reason)
    return {
        "promote": promote,
        "reason": reason,
        "checks": checks,
        "metric": gate.metric,
        "challenger_value": challenger_value,
        "champion_value": champion_value,
        "champion_version": champion_version,
    }

"""Evaluation nodes: model-behaviour checks (directional and invariance tests)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from churn_mlops.contracts.features import FeatureSpec
from churn_mlops.pipelines.evaluation.common import (
    key_columns,
)
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.evaluation.params import (
    EvaluationParams,
    EvaluationSetup,
)
from churn_mlops.pipelines.training.params import TrainingParams

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- behaviour


def check_model_behaviour(
    trained_model: Pipeline,
    test_split: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Model-behaviour tests: directional expectations and invariance to identifiers.

    * Directional: for the typical customer (median numerics, most frequent categories) and
      for each sampled test customer, raising a feature through its listed values must never
      move the score against the expected direction by more than ``tolerance``.
    * Invariance: scores must not change when the rows carry their key columns (customer id,
      snapshot date), when those keys are replaced by other values, or when rows are reordered.

    Returns:
        ``{"passed": bool, "checks": [{"name", "passed", ...details}]}``.
    """
    cfg = setup.evaluation
    tcfg = setup.training
    specs = setup.features
    names = [s.name for s in specs]
    sample = test_split.sample(
        n=min(cfg.behaviour.sample_rows, len(test_split)), random_state=tcfg.seed
    ).reset_index(drop=True)
    typical = _typical_row(sample, specs)
    checks = [
        _skipped_constant(check, test_split)
        or _directional_check(trained_model, typical, sample[names], check, cfg)
        for check in cfg.behaviour.directional
    ]
    checks.append(_invariance_check(trained_model, sample, names, tcfg, cfg))
    run = [c for c in checks if not c.get("skipped")]
    report = {
        "passed": all(c["passed"] for c in run),
        "checks": checks,
        "skipped": [c["name"] for c in checks if c.get("skipped")],
    }
    for check in checks:
        if check.get("skipped"):
            logger.warning("Behaviour check %s: SKIPPED (%s)", check["name"], check["reason"])
            continue
        (logger.info if check["passed"] else logger.warning)(
            "Behaviour check %s: %s", check["name"], "passed" if check["passed"] else "FAILED"
        )
    return report


def _skipped_constant(check: Any, test_split: pd.DataFrame) -> dict[str, Any] | None:
    """A directional check on a feature with one value in the test split tests nothing: it is
    reported as skipped, with the reason, instead of passing."""
    if check.feature not in test_split.columns:
        return None  # _directional_check names the missing feature
    values = test_split[check.feature].dropna().unique()
    if len(values) > 1:
        return None
    return {
        "name": f"directional:{check.feature}:{check.direction}",
        "passed": None,
        "skipped": True,
        "reason": f"feature {check.feature!r} is constant in the test split "
        f"(always {values[0] if len(values) else 'null'}): the model cannot have learnt a "
        "direction from it",
    }


def _directional_check(
    model: Pipeline,
    typical: pd.DataFrame,
    sample: pd.DataFrame,
    check: Any,
    cfg: EvaluationParams,
) -> dict[str, Any]:
    if check.feature not in sample.columns:
        raise EvaluationConfigError(
            f"evaluation.behaviour.directional names feature {check.feature!r}, which is not in "
            f"the feature list {sorted(sample.columns)}"
        )
    values = sorted(check.values)
    sign = 1.0 if check.direction == "increasing" else -1.0
    rows = pd.concat([typical, sample], ignore_index=True)
    grid = pd.concat([rows.assign(**{check.feature: v}) for v in values], ignore_index=True)
    scores = model.predict_proba(grid)[:, 1].reshape(len(values), len(rows)).T
    steps = sign * np.diff(scores, axis=1)
    worst = float(steps.min()) if steps.size else 0.0
    violating = int((steps < -cfg.behaviour.tolerance).any(axis=1).sum())
    return {
        "name": f"directional:{check.feature}:{check.direction}",
        "passed": violating == 0,
        "values": values,
        "typical_customer_scores": [float(s) for s in scores[0]],
        "customers_checked": len(rows),
        "customers_violating": violating,
        "worst_step": worst,
    }


def _invariance_check(
    model: Pipeline,
    sample: pd.DataFrame,
    names: list[str],
    tcfg: TrainingParams,
    cfg: EvaluationParams,
) -> dict[str, Any]:
    keys = [c for c in key_columns(tcfg) if c in sample.columns]
    rows = sample[[*keys, *names]]  # a row as a caller holds it: keys and features
    reference = model.predict_proba(rows)[:, 1]
    rng = np.random.default_rng(tcfg.seed)
    replaced = rows.copy()
    for key in keys:
        replaced[key] = rng.permutation(replaced[key].to_numpy())
        if key in tcfg.id_columns and pd.api.types.is_numeric_dtype(replaced[key]):
            replaced[key] = replaced[key] + 10_000_000  # ids never seen in training
    order = rng.permutation(len(rows))
    variants = {
        "keys_dropped": lambda: model.predict_proba(rows[names])[:, 1],
        "keys_replaced": lambda: model.predict_proba(replaced)[:, 1],
        "rows_reordered": lambda: model.predict_proba(rows.iloc[order])[:, 1][np.argsort(order)],
    }
    changes: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, score in variants.items():
        try:
            changes[name] = float(np.max(np.abs(score() - reference)))
        except (KeyError, ValueError) as exc:  # the model needs a key column to score
            changes[name] = float("inf")
            errors[name] = f"{type(exc).__name__}: {exc}"
    result = {
        "name": "invariance:" + ",".join(keys or ["row_order"]),
        "passed": all(c <= cfg.behaviour.tolerance for c in changes.values()),
        "max_abs_score_change": changes,
        "customers_checked": len(rows),
    }
    if errors:
        result["errors"] = errors
    return result


def _typical_row(sample: pd.DataFrame, specs: list[FeatureSpec]) -> pd.DataFrame:
    row: dict[str, Any] = {}
    for spec in specs:
        column = sample[spec.name]
        if spec.kind == "numeric":
            row[spec.name] = column.median()
        else:
            row[spec.name] = column.mode().iloc[0]
    return pd.DataFrame([row]).astype(
        sample[[s.name for s in specs]].dtypes.to_dict(), errors="ignore"
    )

"""Evaluation nodes: SHAP explanations of the fitted Pipeline (values, importance, plots)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from churn_mlops.pipelines.evaluation.common import (
    column_owners,
    display_names,
)
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.evaluation.params import (
    EvaluationSetup,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- SHAP


def _shap_values(
    model: Any, transformed: np.ndarray, background: Any
) -> tuple[np.ndarray, float, np.ndarray, str]:
    """SHAP values, base value and the model's log-odds, with the explainer used."""
    import shap

    if hasattr(model, "get_booster"):
        explainer = shap.TreeExplainer(model)
        values = np.asarray(explainer.shap_values(transformed), dtype=np.float64)
        margin = np.asarray(model.predict(transformed, output_margin=True), dtype=np.float64)
        kind = "TreeExplainer"
    elif hasattr(model, "coef_"):
        explainer = shap.LinearExplainer(model, shap.maskers.Independent(background()))
        values = np.asarray(explainer.shap_values(transformed), dtype=np.float64)
        margin = np.asarray(model.decision_function(transformed), dtype=np.float64)
        kind = "LinearExplainer"
    else:
        raise EvaluationConfigError(
            f"no SHAP explainer for estimator {type(model).__name__}; expected a tree model "
            "(get_booster) or a linear model (coef_)"
        )
    return values, float(np.ravel(explainer.expected_value)[0]), margin, kind


def _importance(
    values: np.ndarray, columns: list[str], owners: list[str], names: list[str]
) -> pd.DataFrame:
    """Mean |SHAP| per feature (one-hot columns summed back to their feature), descending."""
    per_feature = pd.DataFrame(values, columns=columns).T.groupby(owners).sum().T
    importance = (
        per_feature.abs()
        .mean()
        .rename("mean_abs_shap")
        .reindex(names)
        .sort_values(ascending=False)
        .rename_axis("feature")
        .reset_index()
    )
    importance["share"] = importance["mean_abs_shap"] / importance["mean_abs_shap"].sum()
    return importance


def explain_model(
    trained_model: Pipeline,
    test_split: pd.DataFrame,
    setup: EvaluationSetup,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """SHAP contributions of the trained model on a sample of the test split.

    Tree models use ``TreeExplainer``, linear models ``LinearExplainer`` (independent masker
    on a background sample); both explain the log-odds. The additivity check compares base
    value + contributions with the model's own log-odds output for every explained row.

    Returns:
        ``shap_importance`` (mean |SHAP| per feature, one-hot columns summed back to their
        feature, descending), the explanation for the summary plot, and the additivity report
        (``passed``, ``max_abs_error``, ``tolerance``, ``explainer``).
    """
    cfg = setup.evaluation
    tcfg = setup.training
    specs = setup.features
    names = [s.name for s in specs]
    sample = test_split.sample(
        n=min(cfg.shap.sample_rows, len(test_split)), random_state=tcfg.seed
    )[names]
    preprocess, model = trained_model.named_steps["preprocess"], trained_model.named_steps["model"]
    transformed = np.asarray(preprocess.transform(sample), dtype=np.float64)
    columns = list(preprocess.get_feature_names_out())
    owners = column_owners(preprocess)

    def background() -> Any:  # only linear models need a background sample
        rows = min(cfg.shap.background_rows, len(test_split))
        return preprocess.transform(test_split.sample(n=rows, random_state=tcfg.seed + 1)[names])

    values, base, margin, kind = _shap_values(model, transformed, background)
    error = float(np.max(np.abs(base + values.sum(axis=1) - margin)))
    additivity = {
        "passed": bool(error <= cfg.shap.additivity_tolerance),
        "max_abs_error": error,
        "tolerance": cfg.shap.additivity_tolerance,
        "explainer": kind,
        "rows": len(sample),
        "output": "log-odds",
    }
    log = logger.info if additivity["passed"] else logger.error
    log("SHAP additivity (%s, %d rows): max error %.2e", kind, len(sample), error)

    importance = _importance(values, columns, owners, names)
    display = pd.DataFrame(transformed, columns=columns)
    for column, owner in zip(columns, owners, strict=True):
        if column.startswith("numeric__"):
            display[column] = sample[owner].to_numpy(dtype=float)
    explanation = {
        "values": values,
        "data": display.to_numpy(),
        "columns": display_names(preprocess),
        "base_value": base,
    }
    return importance, explanation, additivity


def plot_shap_summary(explanation: dict[str, Any], setup: EvaluationSetup) -> Figure:
    """SHAP beeswarm summary plot (one dot per explained row and encoded column)."""
    import matplotlib.pyplot as plt
    import shap

    cfg = setup.evaluation
    fig = plt.figure(figsize=(8, 7))
    shap.summary_plot(
        explanation["values"],
        explanation["data"],
        feature_names=explanation["columns"],
        max_display=cfg.shap.max_display,
        show=False,
    )
    fig = plt.gcf()
    fig.suptitle("SHAP contributions to churn log-odds (test sample)")
    fig.tight_layout()
    return fig


def plot_shap_importance(shap_importance: pd.DataFrame) -> Figure:
    """Bar chart of global importance (mean |SHAP| per feature)."""
    ordered = shap_importance.sort_values("mean_abs_shap")
    fig = Figure(figsize=(7, max(3, 0.3 * len(ordered))))
    ax = fig.subplots()
    ax.barh(ordered["feature"], ordered["mean_abs_shap"], color="tab:blue")
    ax.set_xlabel("mean |SHAP| (log-odds)")
    ax.set_title("Global feature importance")
    fig.tight_layout()
    return fig

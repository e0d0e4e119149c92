"""Nodes of the evaluation pipeline: test metrics, business threshold, calibration, segments,
SHAP, behaviour checks, reference profile, model card and the promotion decision.

All nodes are pure: the champion arrives already loaded (``MlflowChampionModelDataset``) and
the decision leaves as data for ``MlflowModelRegistrationDataset`` to carry out.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from churn_mlops.model_metrics import ranking_metrics, threshold_metrics
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.evaluation.params import (
    EvaluationParams,
    EvaluationSetup,
    parse_evaluation_params,
)
from churn_mlops.contracts.features import FeatureSpec, parse_feature_list
from churn_mlops.pipelines.training.errors import FeatureContractError
from churn_mlops.pipelines.training.params import TrainingParams, parse_training_params
from churn_mlops.registry import RUN_ID_TOKEN, VERSION_TOKEN

logger = logging.getLogger(__name__)

#: Column of the prediction tables holding the churn probability.
SCORE = "score"


#: Test metrics that ``compute_test_metrics`` reports (what gate minimums may name).
TEST_METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "prevalence",
    "pr_auc_lift",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "flagged_share",
    "threshold",
    "net_value",
    "net_value_per_customer",
    "rows",
)


# --------------------------------------------------------------------------- parameters


def validate_evaluation_parameters(
    evaluation: dict[str, Any], training: dict[str, Any], features: list[dict[str, Any]]
) -> EvaluationSetup:
    """Validate the ``evaluation`` and ``training`` parameters and the feature list once.

    Besides each value's own rules, checks them against each other: segment columns are
    categorical features, the age column and directional-check features are numeric
    features, and gate minimums name test metrics.

    Args:
        evaluation: The ``evaluation`` parameters.
        training: The ``training`` parameters (label, keys, seed, model logging).
        features: The ``feature_engineering.features`` list.

    Returns:
        The validated setup every later evaluation node receives.

    Raises:
        EvaluationConfigError: A parameter is invalid or disagrees with the feature list.
    """
    cfg = parse_evaluation_params(evaluation)
    tcfg = parse_training_params(training)
    specs = parse_feature_list(features)
    kinds = {s.name: s.kind for s in specs}
    problems = [
        f"evaluation.segments.columns: {c!r} is not a categorical feature"
        for c in cfg.segments.columns
        if kinds.get(c) != "categorical"
    ]
    if kinds.get(cfg.segments.age_column) != "numeric":
        problems.append(
            f"evaluation.segments.age_column: {cfg.segments.age_column!r} is not a numeric feature"
        )
    problems += [
        f"evaluation.behaviour.directional: {check.feature!r} is not a numeric feature"
        for check in cfg.behaviour.directional
        if kinds.get(check.feature) != "numeric"
    ]
    problems += [
        f"evaluation.gate.minimums: {metric!r} is not a test metric (one of {list(TEST_METRICS)})"
        for metric in cfg.gate.minimums
        if metric not in TEST_METRICS
    ]
    if problems:
        raise EvaluationConfigError(
            "evaluation parameters disagree with the feature list or metrics: "
            + "; ".join(problems)
            + f" (features: {sorted(kinds)})"
        )
    return EvaluationSetup(evaluation=cfg, training=tcfg, features=specs)


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
    _require_columns(split, [*_keys(cfg), cfg.target, *[s.name for s in specs]], "split")
    scores = trained_model.predict_proba(split[[s.name for s in specs]])[:, 1]
    return split[[*_keys(cfg), cfg.target]].assign(**{SCORE: scores})


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
    from churn_mlops.model_metrics import as_tracking_metrics  # noqa: PLC0415

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
    _require_columns(test_split, [*seg.columns, seg.age_column], "test_split")
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
    bands = pd.cut(test_split[seg.age_column], edges, right=False, labels=labels)
    segments = {
        **{c: test_split[c].astype(str) for c in seg.columns},
        "age_band": bands.astype(str),
    }
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


# --------------------------------------------------------------------------- SHAP


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
    import shap  # noqa: PLC0415 - heavy import, only this node needs it

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
    owners = _column_owners(preprocess)

    if hasattr(model, "get_booster"):
        explainer = shap.TreeExplainer(model)
        values = np.asarray(explainer.shap_values(transformed), dtype=np.float64)
        base = float(np.ravel(explainer.expected_value)[0])
        margin = np.asarray(model.predict(transformed, output_margin=True), dtype=np.float64)
        kind = "TreeExplainer"
    elif hasattr(model, "coef_"):
        background = preprocess.transform(
            test_split.sample(
                n=min(cfg.shap.background_rows, len(test_split)), random_state=tcfg.seed + 1
            )[names]
        )
        explainer = shap.LinearExplainer(model, shap.maskers.Independent(background))
        values = np.asarray(explainer.shap_values(transformed), dtype=np.float64)
        base = float(np.ravel(explainer.expected_value)[0])
        margin = np.asarray(model.decision_function(transformed), dtype=np.float64)
        kind = "LinearExplainer"
    else:
        raise EvaluationConfigError(
            f"no SHAP explainer for estimator {type(model).__name__}; expected a tree model "
            "(get_booster) or a linear model (coef_)"
        )
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
    display = pd.DataFrame(transformed, columns=columns)
    for column, owner in zip(columns, owners, strict=True):
        if column.startswith("numeric__"):
            display[column] = sample[owner].to_numpy(dtype=float)
    explanation = {
        "values": values,
        "data": display.to_numpy(),
        "columns": _display_names(preprocess),
        "base_value": base,
    }
    return importance, explanation, additivity


def plot_shap_summary(explanation: dict[str, Any], setup: EvaluationSetup) -> Figure:
    """SHAP beeswarm summary plot (one dot per explained row and encoded column)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 - shap draws on pyplot's current figure
    import shap  # noqa: PLC0415

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
        _directional_check(trained_model, typical, sample[names], check, cfg)
        for check in cfg.behaviour.directional
    ]
    checks.append(_invariance_check(trained_model, sample, names, tcfg, cfg))
    report = {"passed": all(c["passed"] for c in checks), "checks": checks}
    for check in checks:
        (logger.info if check["passed"] else logger.warning)(
            "Behaviour check %s: %s", check["name"], "passed" if check["passed"] else "FAILED"
        )
    return report


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
    keys = [c for c in _keys(tcfg) if c in sample.columns]
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


# --------------------------------------------------------------------------- profile


def build_reference_profile(
    trained_model: Pipeline,
    train_split: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Training-data distribution of every feature and of the training score, for drift.

    Written to the ``reference_profile.json`` contract (docs/architecture.md) by
    ``churn_mlops.monitoring.profile``, which monitoring and serving read back.

    Returns:
        ``{"features": {name: profile}, "score": profile, "source", "rows"}``.
    """
    from churn_mlops.monitoring.profile import (  # noqa: PLC0415
        build_reference_profile as profile_frame,
    )
    from churn_mlops.contracts.profile import profile_to_dict  # noqa: PLC0415

    cfg = setup.evaluation
    specs = setup.features
    names = [s.name for s in specs]
    frame = train_split[names]
    scores = trained_model.predict_proba(frame)[:, 1]
    profile = profile_frame(
        frame,
        {s.name: s.kind for s in specs},
        n_bins=cfg.reference_profile.n_bins,
        scores=scores,
    )
    return {**profile_to_dict(profile), "source": "train_split", "rows": len(frame)}


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
    checks: list[dict[str, Any]] = []
    for metric, minimum in sorted(gate.minimums.items()):
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
    if gate.require_behaviour_checks:
        failed = [c["name"] for c in behaviour_report["checks"] if not c["passed"]]
        checks.append(
            {
                "name": "behaviour",
                "passed": not failed,
                "detail": "all behaviour checks passed"
                if not failed
                else f"failed behaviour checks: {failed}",
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
    champion_value = None
    champion_version = None
    if champion_scores.get("version") is None:
        checks.append(
            {"name": "champion", "passed": True, "detail": "no champion yet: first model"}
        )
    elif "metrics" not in champion_scores:
        champion_version = champion_scores["version"]
        checks.append(
            {
                "name": "champion",
                "passed": True,
                "detail": f"champion v{champion_version} cannot score the current test split "
                f"({champion_scores.get('error')}); the minimums decide",
            }
        )
    else:
        champion_version = champion_scores["version"]
        champion_value = float(champion_scores["metrics"][gate.metric])
        floor = champion_value - gate.max_degradation
        checks.append(
            {
                "name": "champion",
                "passed": bool(challenger_value >= floor),
                "detail": f"{gate.metric} {challenger_value:.4f} vs champion v{champion_version} "
                f"{champion_value:.4f} (allowed down to {floor:.4f})",
            }
        )
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


# --------------------------------------------------------------------------- packaging


def build_model_metadata(
    trained_model: Pipeline,
    train_split: pd.DataFrame,
    decision_threshold: dict[str, Any],
    test_metrics: dict[str, float],
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """``model_metadata.json`` (docs/architecture.md) without the version and run id.

    ``model_version`` and ``run_id`` are ``None`` here: only the registry knows them, and the
    registration dataset fills them in. Numeric ``min``/``max`` are the bounds declared in the
    feature list (``None`` when not declared); the training range is given as
    ``observed_min``/``observed_max``.
    """
    cfg = setup.evaluation
    specs = setup.features
    feature_entries: list[dict[str, Any]] = []
    for spec in specs:
        entry: dict[str, Any] = {"name": spec.name, "kind": spec.kind}
        if spec.kind == "numeric":
            column = train_split[spec.name]
            entry.update(
                min=spec.min,
                max=spec.max,
                observed_min=_as_number(column.min()),
                observed_max=_as_number(column.max()),
            )
        else:
            entry["categories"] = list(spec.categories or [])
        entry["description"] = spec.description
        feature_entries.append(entry)
    return {
        "model_name": cfg.registry.model_name,
        "model_version": None,
        "run_id": None,
        "threshold": float(decision_threshold["threshold"]),
        "metrics": {k: (None if not np.isfinite(v) else float(v)) for k, v in test_metrics.items()},
        "estimator": type(trained_model.named_steps["model"]).__name__,
        "score": "predict_proba(X)[:, 1]: churn risk within the label horizon (class-weighted "
        "training; see the model card's calibration section)",
        "features": feature_entries,
    }


def build_model_card(  # noqa: PLR0913
    model_metadata: dict[str, Any],
    split_summary: dict[str, Any],
    model_selection: dict[str, Any],
    candidate_scores: dict[str, dict[str, float]],
    test_metrics: dict[str, float],
    decision_threshold: dict[str, Any],
    calibration_table: pd.DataFrame,
    segment_metrics: pd.DataFrame,
    shap_importance: pd.DataFrame,
    shap_additivity: dict[str, Any],
    behaviour_report: dict[str, Any],
    promotion_decision: dict[str, Any],
) -> str:
    """The model card (Markdown): what the model is, how it was trained, how well it does.

    The version and run id are placeholders filled at registration.
    """
    splits = split_summary["splits"]
    business = decision_threshold["business"]
    lines = [
        f"# Model card: {model_metadata['model_name']} v{VERSION_TOKEN}",
        "",
        f"- **MLflow run**: `{RUN_ID_TOKEN}`",
        f"- **Estimator**: {model_metadata['estimator']} inside one scikit-learn `Pipeline` "
        "(`preprocess` ColumnTransformer + `model`)",
        f"- **Winner of**: {', '.join(sorted(candidate_scores))} by validation "
        f"{model_selection['metric']} ({model_selection['value']:.4f}, lead "
        f"{model_selection['lead']:+.4f} over {model_selection['runner_up']})",
        f"- **Score**: {model_metadata['score']}",
        f"- **Decision threshold**: {decision_threshold['threshold']:.4f} (flag a customer for "
        "a retention offer when score >= threshold)",
        f"- **Data fingerprint**: `{split_summary['data_fingerprint'][:16]}…` "
        f"({split_summary['rows']} rows of model_input_table)",
        "",
        "## Intended use",
        "",
        "Rank active subscribers by their risk of churning within the label horizon, so that a "
        "retention team can target offers. Not for decisions about individuals without human "
        "review; scores describe the customer as of the end of the previous month.",
        "",
        "## Training data (time-based split)",
        "",
        "| split | months | rows | churn rate |",
        "|---|---|---:|---:|",
        *[
            f"| {name} | {s['months'][0]} … {s['months'][-1]} | {s['rows']} | "
            f"{s['positive_rate']:.2%} |"
            for name, s in splits.items()
        ],
        "",
        f"Rows whose label window ({split_summary['purge_days']} days) reaches into the next "
        f"split were dropped: {split_summary['purged_rows']}.",
        "",
        "## Candidates (validation split)",
        "",
        "| candidate | PR AUC | ROC AUC | Brier | log loss |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {name} | {m['pr_auc']:.4f} | {m['roc_auc']:.4f} | {m['brier']:.4f} | "
            f"{m['log_loss']:.4f} |"
            for name, m in sorted(candidate_scores.items())
        ],
        "",
        "## Test metrics",
        "",
        "| metric | value |",
        "|---|---:|",
        *[f"| {k} | {_fmt(v)} |" for k, v in test_metrics.items()],
        "",
        "## Business value",
        "",
        f"An offer costs {business['offer_cost']}, succeeds with probability "
        f"{business['offer_success_rate']} and a retained customer is worth "
        f"{business['retained_customer_value']}. The threshold was chosen on the validation "
        f"split (net value {decision_threshold['expected_net_value']:.0f}); on the test split it "
        f"yields a net value of {test_metrics['net_value']:.0f} "
        f"({test_metrics['net_value_per_customer']:.2f} per scored customer), flagging "
        f"{test_metrics['flagged_share']:.1%} of customers.",
        "",
        "![net value](net_value_curve.png)",
        "",
        "## Calibration (test split)",
        "",
        "| bin | rows | mean score | observed churn rate |",
        "|---:|---:|---:|---:|",
        *[
            f"| {int(r.bin)} | {int(r.rows)} | {r.mean_score:.4f} | {r.observed_rate:.4f} |"
            for r in calibration_table.itertuples()
        ],
        "",
        _calibration_note(calibration_table),
        "",
        "![calibration](calibration_curve.png)",
        "",
        "## Metrics by segment (test split)",
        "",
        "| segment | value | rows | churn rate | mean score | ROC AUC | PR AUC | recall |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {r.segment} | {r.value} | {r.rows} | {r.churn_rate:.2%} | {r.mean_score:.4f} | "
            f"{_fmt(r.roc_auc)} | {_fmt(r.pr_auc)} | {_fmt(r.recall)} |"
            for r in segment_metrics.itertuples()
        ],
        "",
        "## Explanations (SHAP)",
        "",
        f"{shap_additivity['explainer']} on {shap_additivity['rows']} test rows; contributions "
        f"add up to the model's log-odds within {shap_additivity['max_abs_error']:.1e} "
        f"({'passed' if shap_additivity['passed'] else 'FAILED'}, tolerance "
        f"{shap_additivity['tolerance']:.0e}).",
        "",
        "| feature | mean abs SHAP | share |",
        "|---|---:|---:|",
        *[
            f"| {r.feature} | {r.mean_abs_shap:.4f} | {r.share:.1%} |"
            for r in shap_importance.itertuples()
        ],
        "",
        "![SHAP summary](shap_summary.png)",
        "",
        "## Behaviour checks",
        "",
        *[
            f"- {'PASSED' if c['passed'] else 'FAILED'} `{c['name']}`: "
            + ", ".join(f"{k}={_fmt(v)}" for k, v in c.items() if k not in ("name", "passed"))
            for c in behaviour_report["checks"]
        ],
        "",
        "## Promotion gate",
        "",
        f"**{'Promote' if promotion_decision['promote'] else 'Refuse'}** — "
        f"{promotion_decision['reason']}",
        "",
        *[
            f"- {'ok' if c['passed'] else 'FAILED'} {c['name']}: {c['detail']}"
            for c in promotion_decision["checks"]
        ],
        "",
        "## Limitations",
        "",
        "- Trained on the months listed above; behaviour shifts (drift) after them are watched "
        "by the monitoring pipeline against the reference profile shipped with this version.",
        "- Features describe the customer strictly before the snapshot; a new customer with "
        "little history gets little signal from the usage features.",
        "",
    ]
    return "\n".join(lines)


def prepare_model_registration(  # noqa: PLR0913
    trained_model: Pipeline,
    model_metadata: dict[str, Any],
    model_card: str,
    reference_profile: dict[str, Any],
    promotion_decision: dict[str, Any],
    split_summary: dict[str, Any],
    test_metrics: dict[str, float],
    test_split: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Assemble what ``MlflowModelRegistrationDataset`` registers: model, files, tags, decision.

    Tags carry the data fingerprint, feature list, training months and every test metric so
    that ``kedro models list`` and the MLflow UI can compare versions without opening runs.
    """
    cfg = setup.training
    names = [s.name for s in setup.features]
    splits = split_summary["splits"]
    tags = {
        "data_fingerprint": split_summary["data_fingerprint"],
        "features": ",".join(names),
        "estimator": model_metadata["estimator"],
        "threshold": f"{model_metadata['threshold']:.6f}",
        "train_months": f"{splits['train']['months'][0]}..{splits['train']['months'][-1]}",
        "test_months": f"{splits['test']['months'][0]}..{splits['test']['months'][-1]}",
        **{f"test.{k}": f"{v:.6f}" for k, v in test_metrics.items() if np.isfinite(v)},
    }
    return {
        "model": trained_model,
        "input_example": test_split[names]
        .head(cfg.model_logging.input_example_rows)
        .reset_index(drop=True),
        "logging": cfg.model_logging.model_dump(),
        "tags": tags,
        "metadata": model_metadata,
        "model_card": model_card,
        "reference_profile": reference_profile,
        "decision": {
            "promote": promotion_decision["promote"],
            "reason": promotion_decision["reason"],
            "champion_version": promotion_decision["champion_version"],
        },
    }


# --------------------------------------------------------------------------- helpers


def _keys(cfg: TrainingParams) -> list[str]:
    return [*cfg.id_columns, cfg.time_column]


def _require_columns(frame: pd.DataFrame, columns: list[str], table: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise FeatureContractError(
            f"{table} lacks column(s) {missing}; present: {sorted(map(str, frame.columns))}"
        )


def _column_owners(preprocess: Any) -> list[str]:
    """The original feature behind each output column of the fitted ColumnTransformer."""
    owners: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "categorical":
            for column, categories in zip(columns, transformer.categories_, strict=True):
                owners.extend([column] * len(categories))
        else:
            owners.extend(columns)
    return owners


def _display_names(preprocess: Any) -> list[str]:
    """Readable names of the output columns: ``contract=one_year``, ``late_payments_90d``."""
    names: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "categorical":
            for column, categories in zip(columns, transformer.categories_, strict=True):
                names.extend(f"{column}={category}" for category in categories)
        else:
            names.extend(columns)
    return names


def _calibration_note(calibration_table: pd.DataFrame) -> str:
    rows = calibration_table["rows"]
    mean_score = float((calibration_table["mean_score"] * rows).sum() / rows.sum())
    observed = float((calibration_table["observed_rate"] * rows).sum() / rows.sum())
    note = f"Mean score {mean_score:.4f} against an observed churn rate of {observed:.4f}."
    if observed > 0 and mean_score / observed > 1.2:
        note += (
            " Class weighting during training lifts scores above observed rates: use the score "
            "to rank customers and the threshold to decide, not as a calibrated probability."
        )
    return note


def _as_number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if not np.isfinite(value) else f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)

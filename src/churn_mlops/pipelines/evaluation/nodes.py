"""Nodes of the evaluation pipeline, one module per concern, gathered here for the pipeline.

:mod:`.metrics` (scores, threshold, test metrics, calibration, segments), :mod:`.explanations`
(SHAP), :mod:`.behaviour` (model-behaviour checks), :mod:`.packaging` (reference profile,
metadata, golden sample, registration payload), :mod:`.model_card` (Jinja2 template) and
:mod:`.gate` (the promotion decision). This module validates the parameters and re-exports
every node.

All nodes are pure: the champion arrives already loaded (a catalog dataset) and the decision
leaves as data for ``MlflowModelRegistrationDataset`` to carry out.
"""

from __future__ import annotations

import logging
from typing import Any

from churn_mlops.contracts.features import parse_feature_list
from churn_mlops.pipelines.evaluation.behaviour import (
    check_model_behaviour,
)
from churn_mlops.pipelines.evaluation.common import SCORE, TEST_METRICS
from churn_mlops.pipelines.evaluation.errors import EvaluationConfigError
from churn_mlops.pipelines.evaluation.explanations import (
    explain_model,
    plot_shap_importance,
    plot_shap_summary,
)
from churn_mlops.pipelines.evaluation.gate import (
    decide_promotion,
    score_champion,
)
from churn_mlops.pipelines.evaluation.metrics import (
    choose_decision_threshold,
    compute_calibration,
    compute_segment_metrics,
    compute_test_metrics,
    format_tracking_metrics,
    plot_calibration_curve,
    plot_net_value_curve,
    predict_churn_scores,
)
from churn_mlops.pipelines.evaluation.model_card import (
    build_model_card,
)
from churn_mlops.pipelines.evaluation.packaging import (
    build_golden_sample,
    build_model_metadata,
    build_reference_profile,
    describe_feature_views,
    prepare_model_registration,
)
from churn_mlops.pipelines.evaluation.params import (
    EvaluationSetup,
    parse_evaluation_params,
)
from churn_mlops.pipelines.training.params import parse_training_params

__all__ = [
    "SCORE",
    "TEST_METRICS",
    "build_golden_sample",
    "build_model_card",
    "build_model_metadata",
    "build_reference_profile",
    "check_model_behaviour",
    "choose_decision_threshold",
    "compute_calibration",
    "compute_segment_metrics",
    "compute_test_metrics",
    "decide_promotion",
    "describe_feature_views",
    "explain_model",
    "format_tracking_metrics",
    "plot_calibration_curve",
    "plot_net_value_curve",
    "plot_shap_importance",
    "plot_shap_summary",
    "predict_churn_scores",
    "prepare_model_registration",
    "score_champion",
    "validate_evaluation_parameters",
]

logger = logging.getLogger(__name__)


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
    if cfg.segments.age_column is not None and kinds.get(cfg.segments.age_column) != "numeric":
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

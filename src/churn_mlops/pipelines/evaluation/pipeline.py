"""Wiring of the ``evaluation`` pipeline (see ``nodes.py`` for what each step does)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.evaluation import nodes

SETUP = "evaluation_setup"


def _scores_and_metrics() -> Pipeline:
    """Validate the parameters, score the splits, pick the threshold and measure the test split."""
    return Pipeline(
        [
            Node(
                nodes.validate_evaluation_parameters,
                inputs=[
                    "params:evaluation",
                    "params:training",
                    "params:feature_engineering.features",
                ],
                outputs=SETUP,
                name="validate_evaluation_parameters",
            ),
            Node(
                nodes.predict_churn_scores,
                inputs=["trained_model", "validation_split", SETUP],
                outputs="validation_predictions",
                name="predict_validation_scores",
            ),
            Node(
                nodes.predict_churn_scores,
                inputs=["trained_model", "test_split", SETUP],
                outputs="test_predictions",
                name="predict_test_scores",
            ),
            Node(
                nodes.choose_decision_threshold,
                inputs=["validation_predictions", SETUP],
                outputs="decision_threshold",
                name="choose_decision_threshold",
            ),
            Node(
                nodes.plot_net_value_curve,
                inputs="decision_threshold",
                outputs="net_value_curve_plot",
                name="plot_net_value_curve",
            ),
            Node(
                nodes.compute_test_metrics,
                inputs=["test_predictions", "decision_threshold", SETUP],
                outputs="test_metrics",
                name="compute_test_metrics",
            ),
            Node(
                nodes.format_tracking_metrics,
                inputs="test_metrics",
                outputs="test_metrics_tracking",
                name="format_test_metrics_for_tracking",
            ),
            Node(
                nodes.compute_calibration,
                inputs=["test_predictions", SETUP],
                outputs="calibration_table",
                name="compute_calibration",
            ),
            Node(
                nodes.plot_calibration_curve,
                inputs="calibration_table",
                outputs="calibration_plot",
                name="plot_calibration_curve",
            ),
            Node(
                nodes.compute_segment_metrics,
                inputs=["test_predictions", "test_split", "decision_threshold", SETUP],
                outputs="segment_metrics",
                name="compute_segment_metrics",
            ),
        ]
    )


def _explanations_and_checks() -> Pipeline:
    """SHAP explanations, behaviour checks and the reference profile."""
    return Pipeline(
        [
            Node(
                nodes.explain_model,
                inputs=["trained_model", "test_split", SETUP],
                outputs=["shap_importance", "shap_explanation", "shap_additivity"],
                name="explain_model",
            ),
            Node(
                nodes.plot_shap_summary,
                inputs=["shap_explanation", SETUP],
                outputs="shap_summary_plot",
                name="plot_shap_summary",
            ),
            Node(
                nodes.plot_shap_importance,
                inputs="shap_importance",
                outputs="shap_importance_plot",
                name="plot_shap_importance",
            ),
            Node(
                nodes.check_model_behaviour,
                inputs=["trained_model", "test_split", SETUP],
                outputs="behaviour_report",
                name="check_model_behaviour",
            ),
            Node(
                nodes.build_reference_profile,
                inputs=["trained_model", "train_split", SETUP],
                outputs="reference_profile",
                name="build_reference_profile",
            ),
        ]
    )


def _gate() -> Pipeline:
    """Score the champion on the same test split and decide the gate."""
    return Pipeline(
        [
            Node(
                nodes.score_champion,
                inputs=["champion_model", "test_split", SETUP],
                outputs="champion_scores",
                name="score_champion",
            ),
            Node(
                nodes.decide_promotion,
                inputs=[
                    "test_metrics",
                    "champion_scores",
                    "behaviour_report",
                    "shap_additivity",
                    SETUP,
                ],
                outputs="promotion_decision",
                name="decide_promotion",
            ),
        ]
    )


def _registration() -> Pipeline:
    """Package what the registry keeps with the version: metadata, card, golden sample."""
    return Pipeline(
        [
            Node(
                nodes.describe_feature_views,
                inputs=["params:feature_store", SETUP],
                outputs="model_feature_views",
                name="describe_feature_views",
            ),
            Node(
                nodes.build_model_metadata,
                inputs=[
                    "trained_model",
                    "train_split",
                    "decision_threshold",
                    "test_metrics",
                    SETUP,
                    "model_feature_views",
                ],
                outputs="model_metadata_draft",
                name="build_model_metadata",
            ),
            Node(
                nodes.build_model_card,
                inputs=[
                    "model_metadata_draft",
                    "split_summary",
                    "model_selection",
                    "candidate_scores",
                    "test_metrics",
                    "decision_threshold",
                    "calibration_table",
                    "segment_metrics",
                    "shap_importance",
                    "shap_additivity",
                    "behaviour_report",
                    "promotion_decision",
                ],
                outputs="model_card_draft",
                name="build_model_card",
            ),
            Node(
                nodes.build_golden_sample,
                inputs=["test_split", "test_predictions", SETUP],
                outputs="registration_golden_sample",
                name="build_golden_sample",
            ),
            Node(
                nodes.prepare_model_registration,
                inputs=[
                    "trained_model",
                    "model_metadata_draft",
                    "model_card_draft",
                    "reference_profile",
                    "promotion_decision",
                    "split_summary",
                    "test_metrics",
                    "test_split",
                    "registration_golden_sample",
                    SETUP,
                ],
                outputs="registered_model",
                name="prepare_model_registration",
            ),
        ]
    )


def create_pipeline(**kwargs: object) -> Pipeline:
    """Validate parameters, score the splits, measure, explain, check behaviour, decide the
    gate and register the model."""
    return _scores_and_metrics() + _explanations_and_checks() + _gate() + _registration()

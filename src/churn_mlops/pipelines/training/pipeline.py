"""Wiring of the ``training`` pipeline (see ``nodes.py`` for what each step does)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.training import nodes

SPECS = "feature_specs"
CONFIG = "training_config"


def create_pipeline(**kwargs: object) -> Pipeline:
    """Validate parameters, split by month, fit the baseline, search and fit XGBoost, pick the
    winner and log one MLflow child run per candidate."""
    return Pipeline(
        [
            Node(
                nodes.validate_training_parameters,
                inputs=["params:training", "params:feature_engineering.features"],
                outputs=["training_config", "feature_specs"],
                name="validate_training_parameters",
            ),
            Node(
                nodes.split_by_snapshot_month,
                inputs=["model_input_table@pandas", SPECS, CONFIG],
                outputs=["train_split", "validation_split", "test_split", "split_summary"],
                name="split_by_snapshot_month",
            ),
            Node(
                nodes.sample_training_rows,
                inputs=["train_split", CONFIG],
                outputs="training_sample",
                name="sample_training_rows",
            ),
            Node(
                nodes.fit_logistic_regression,
                inputs=["training_sample", SPECS, CONFIG],
                outputs="baseline_model",
                name="fit_logistic_regression",
            ),
            Node(
                nodes.tune_xgboost,
                inputs=["training_sample", "validation_split", SPECS, CONFIG],
                outputs=["xgboost_search", "xgboost_search_history"],
                name="tune_xgboost",
            ),
            Node(
                nodes.fit_xgboost,
                inputs=["training_sample", "xgboost_search", SPECS, CONFIG],
                outputs="xgboost_model",
                name="fit_xgboost",
            ),
            Node(
                nodes.score_candidates,
                inputs=["baseline_model", "xgboost_model", "validation_split", SPECS, CONFIG],
                outputs="candidate_scores",
                name="score_candidates",
            ),
            Node(
                nodes.select_best_candidate,
                inputs=["baseline_model", "xgboost_model", "candidate_scores", CONFIG],
                outputs=["trained_model", "model_selection"],
                name="select_best_candidate",
            ),
            Node(
                nodes.package_candidate_runs,
                inputs=[
                    "baseline_model",
                    "xgboost_model",
                    "candidate_scores",
                    "xgboost_search",
                    "model_selection",
                    "training_sample",
                    SPECS,
                    CONFIG,
                ],
                outputs="candidate_runs",
                name="package_candidate_runs",
            ),
        ]
    )

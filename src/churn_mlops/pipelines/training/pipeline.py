"""Wiring of the ``training`` pipeline (see ``nodes.py`` for what each step does)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.training import nodes

FEATURES = "params:feature_engineering.features"
PARAMS = "params:training"


def create_pipeline(**kwargs: object) -> Pipeline:
    """Split by month, fit the baseline, search and fit XGBoost, pick the winner, log runs."""
    return Pipeline(
        [
            Node(
                nodes.split_by_snapshot_month,
                inputs=["model_input_table@pandas", FEATURES, PARAMS],
                outputs=["train_split", "validation_split", "test_split", "split_summary"],
                name="split_by_snapshot_month",
            ),
            Node(
                nodes.sample_training_rows,
                inputs=["train_split", PARAMS],
                outputs="training_sample",
                name="sample_training_rows",
            ),
            Node(
                nodes.fit_logistic_regression,
                inputs=["training_sample", FEATURES, PARAMS],
                outputs="baseline_model",
                name="fit_logistic_regression",
            ),
            Node(
                nodes.tune_xgboost,
                inputs=["training_sample", "validation_split", FEATURES, PARAMS],
                outputs=["xgboost_search", "xgboost_search_history"],
                name="tune_xgboost",
            ),
            Node(
                nodes.fit_xgboost,
                inputs=["training_sample", "xgboost_search", FEATURES, PARAMS],
                outputs="xgboost_model",
                name="fit_xgboost",
            ),
            Node(
                nodes.score_candidates,
                inputs=["baseline_model", "xgboost_model", "validation_split", FEATURES, PARAMS],
                outputs="candidate_scores",
                name="score_candidates",
            ),
            Node(
                nodes.select_best_candidate,
                inputs=["baseline_model", "xgboost_model", "candidate_scores", PARAMS],
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
                    FEATURES,
                    PARAMS,
                ],
                outputs="candidate_runs",
                name="package_candidate_runs",
            ),
        ]
    )

"""Wiring of the ``batch_scoring`` pipeline: active customers → Feast → champion → ranked list."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.batch_scoring import nodes
from churn_mlops.pipelines.feature_store.nodes import validate_feature_store_parameters


def create_pipeline(**kwargs: object) -> Pipeline:
    """Select the active customers, read their point-in-time features through Feast, score and
    explain them with the champion, write the ranked list, the prediction log and metrics."""
    return Pipeline(
        [
            Node(
                validate_feature_store_parameters,
                inputs=["params:feature_store", "params:feature_engineering.features"],
                outputs="batch_feature_store_config",
                name="validate_batch_feature_store_parameters",
            ),
            Node(
                nodes.select_active_customers,
                inputs=["snapshot_spine", "params:batch_scoring", "batch_feature_store_config"],
                outputs="active_customers",
                name="select_active_customers",
            ),
            Node(
                nodes.fetch_scoring_features,
                inputs=["feature_repository", "active_customers", "batch_feature_store_config"],
                outputs="scoring_features",
                name="fetch_scoring_features",
            ),
            Node(
                nodes.score_customers,
                inputs=[
                    "scoring_features",
                    "monitoring_champion",
                    "params:evaluation.business",
                    "params:batch_scoring",
                    "batch_feature_store_config",
                ],
                outputs="retention_list",
                name="score_customers",
            ),
            Node(
                nodes.build_prediction_log,
                inputs=["retention_list", "scoring_features", "batch_feature_store_config"],
                outputs="batch_prediction_log",
                name="build_batch_prediction_log",
            ),
            Node(
                nodes.summarize_batch_scores,
                inputs="retention_list",
                outputs="batch_scoring_metrics",
                name="summarize_batch_scores",
            ),
        ]
    )

"""Wiring of the ``feature_store`` pipeline: feature_engineering output → Feast."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.feature_store import nodes


def create_pipeline(**kwargs: object) -> Pipeline:
    """Validate the parameters, define and register the feature views, materialize the online
    store and write the point-in-time training set read through Feast."""
    return Pipeline(
        [
            Node(
                nodes.validate_feature_store_parameters,
                inputs=["params:feature_store", "params:feature_engineering.features"],
                outputs="feature_store_config",
                name="validate_feature_store_parameters",
            ),
            Node(
                nodes.define_feature_views,
                inputs=["model_input_table@pandas", "feature_store_config", "feature_repository"],
                outputs="feature_definitions",
                name="define_feature_views",
            ),
            Node(
                nodes.register_feature_views,
                inputs=["feature_repository", "feature_definitions"],
                outputs="feature_registration",
                name="register_feature_views",
            ),
            Node(
                nodes.materialize_online_features,
                inputs=[
                    "feature_repository",
                    "feature_registration",
                    "model_input_table@pandas",
                    "feature_store_config",
                ],
                outputs="feature_materialization",
                name="materialize_online_features",
            ),
            Node(
                nodes.build_training_set,
                inputs=[
                    "feature_repository",
                    "feature_registration",
                    "snapshot_spine",
                    "feature_store_config",
                ],
                outputs="feature_store_training_set",
                name="build_training_set",
            ),
        ]
    )

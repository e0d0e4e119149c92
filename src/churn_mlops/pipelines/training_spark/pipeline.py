"""Wiring of ``training_spark``: the ``training`` pipeline with ``fit_xgboost`` on Spark."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.training import create_pipeline as create_training_pipeline
from churn_mlops.pipelines.training_spark import nodes

#: The node of ``training`` that this pipeline replaces.
REPLACED_NODE = "fit_xgboost"


def create_pipeline(**kwargs: object) -> Pipeline:
    """The training pipeline whose final XGBoost fit runs on Spark over every training row.

    Split, sampling, baseline, hyperparameter search, scoring, selection and run logging are
    the ``training`` nodes themselves; only ``fit_xgboost`` is replaced, and its replacement
    writes the same ``xgboost_model`` (one sklearn Pipeline), so evaluation, export and
    serving take it unchanged. Run it in the ``spark`` environment (docs/scaling.md).
    """
    local = create_training_pipeline()
    kept = [node for node in local.nodes if node.name != REPLACED_NODE]
    return Pipeline(
        [
            *kept,
            Node(
                nodes.validate_distributed_parameters,
                inputs="params:training_spark",
                outputs="training_spark_config",
                name="validate_distributed_parameters",
            ),
            Node(
                nodes.select_spark_training_rows,
                inputs=["model_input_table@spark", "split_summary", "training_config"],
                outputs="spark_training_rows",
                name="select_spark_training_rows",
            ),
            Node(
                nodes.fit_xgboost_spark,
                inputs=[
                    "spark_training_rows",
                    "xgboost_search",
                    "feature_specs",
                    "training_config",
                    "training_spark_config",
                ],
                outputs="xgboost_model",
                name="fit_xgboost_spark",
            ),
        ]
    )

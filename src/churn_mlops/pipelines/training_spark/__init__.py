"""The ``training_spark`` pipeline: ``training`` with the XGBoost fit distributed on Spark."""

from __future__ import annotations

from churn_mlops.pipelines.training_spark.pipeline import create_pipeline

__all__ = ["create_pipeline"]

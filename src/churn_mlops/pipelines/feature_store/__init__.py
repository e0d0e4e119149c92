"""``feature_store`` pipeline: register the feature views in Feast and materialize them."""

from churn_mlops.pipelines.feature_store.pipeline import create_pipeline

__all__ = ["create_pipeline"]

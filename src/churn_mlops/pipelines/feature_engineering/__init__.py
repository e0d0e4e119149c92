"""Feature engineering: monthly snapshot spine and point-in-time features → model_input_table."""

from __future__ import annotations

from churn_mlops.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]

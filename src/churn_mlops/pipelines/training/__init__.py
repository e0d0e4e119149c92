"""The ``training`` pipeline: time split, baseline + tuned XGBoost, winner = ``trained_model``."""

from __future__ import annotations

from churn_mlops.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]

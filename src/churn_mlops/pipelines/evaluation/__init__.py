"""The ``evaluation`` pipeline: test metrics, threshold, explanations, gate and registration."""

from __future__ import annotations

from churn_mlops.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""The ``monitoring`` pipeline: drift, delayed-label performance, diagnosis, retrain decision."""

from __future__ import annotations

from churn_mlops.pipelines.monitoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]

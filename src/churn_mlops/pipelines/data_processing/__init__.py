"""The data_processing pipeline: validate raw tables, quarantine soft failures, write primaries."""

from __future__ import annotations

from churn_mlops.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]

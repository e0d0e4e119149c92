"""The ``export`` pipeline: the registry's champion -> a checked, self-contained serving bundle."""

from __future__ import annotations

from churn_mlops.pipelines.export.pipeline import create_pipeline

__all__ = ["create_pipeline"]

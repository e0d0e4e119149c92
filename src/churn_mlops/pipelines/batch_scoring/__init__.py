"""``batch_scoring`` pipeline: the monthly ranked retention list, scored by the champion."""

from churn_mlops.pipelines.batch_scoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]

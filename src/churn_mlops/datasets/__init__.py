"""Project datasets for the parts of MLflow that kedro-mlflow does not cover.

``MlflowCandidateRunsDataset`` logs one nested run per training candidate;
``MlflowChampionModelDataset`` and ``MlflowModelRegistrationDataset`` read and write the model
registry (champion/challenger aliases and the promotion gate). See docs/experiment_tracking.md.
"""

from __future__ import annotations

from churn_mlops.datasets.mlflow_candidates import MlflowCandidateRunsDataset
from churn_mlops.datasets.model_registry import (
    MlflowChampionModelDataset,
    MlflowModelRegistrationDataset,
)

__all__ = [
    "MlflowCandidateRunsDataset",
    "MlflowChampionModelDataset",
    "MlflowModelRegistrationDataset",
]

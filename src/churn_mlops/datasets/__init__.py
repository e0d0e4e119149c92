"""Every custom Kedro dataset of the project (see docs/architecture.md, "Datasets").

``MlflowChampionDataset`` reads the version behind an alias with its files;
``MlflowModelRegistrationDataset`` registers a model and carries out the gate decision;
``MlflowCandidateRunsDataset`` logs one nested run per training candidate; the monitoring
datasets (``datasets.monitoring``) read logs, optional inputs, recent runs and the clock. See
docs/experiment_tracking.md.
"""

from __future__ import annotations

from churn_mlops.datasets.champion import MlflowChampionDataset
from churn_mlops.datasets.mlflow_candidates import MlflowCandidateRunsDataset
from churn_mlops.datasets.model_registry import MlflowModelRegistrationDataset

__all__ = [
    "MlflowCandidateRunsDataset",
    "MlflowChampionDataset",
    "MlflowModelRegistrationDataset",
]

"""``MlflowCandidateRunsDataset``: one nested MLflow run per training candidate.

kedro-mlflow opens one run per ``kedro run`` and logs into it; it has no notion of a nested run
per model. Saving through a dataset keeps nodes free of ``mlflow.*`` calls (the node returns a
plain dictionary) while each candidate still gets its own child run with its parameters,
validation metrics and model (signature + input example), so the MLflow UI compares them
side by side under the pipeline run.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from churn_mlops.datasets._model_logging import log_sklearn_model

logger = logging.getLogger(__name__)


class MlflowCandidateRunsDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Write-only dataset that logs each candidate as a child of the active MLflow run.

    The saved dictionary looks like::

        {"input_example": DataFrame, "logging": {"serialization_format": ..., ...},
         "candidates": {name: {"model": Pipeline, "params": {...}, "metrics": {...},
                               "tags": {...}}}}

    Args:
        run_name_prefix: Prefix of each child run name (``<prefix><candidate>``).
        log_models: Log each candidate model (turn off to log only params and metrics).
        metadata: Kedro-viz and other free-form metadata.

    Example catalog entry::

        candidate_runs:
          type: churn_mlops.datasets.MlflowCandidateRunsDataset
    """

    def __init__(
        self,
        *,
        run_name_prefix: str = "candidate:",
        log_models: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._run_name_prefix = run_name_prefix
        self._log_models = log_models
        self._logging_activated = True  # switched off by kedro-mlflow for untracked pipelines
        self.metadata = metadata
        self.logged_runs: dict[str, str] = {}

    def _save(self, data: dict[str, Any]) -> None:
        if not self._logging_activated:
            logger.info("MLflow tracking is off for this pipeline; candidate runs not logged")
            return
        import mlflow

        candidates = data.get("candidates")
        if not isinstance(candidates, dict) or not candidates:
            raise DatasetError(
                f"candidate_runs expects a non-empty 'candidates' mapping; got keys {sorted(data)}"
            )
        for name, candidate in candidates.items():
            missing = {"model", "params", "metrics"} - set(candidate)
            if missing:
                raise DatasetError(f"candidate {name!r} lacks {sorted(missing)}")
            with mlflow.start_run(run_name=f"{self._run_name_prefix}{name}", nested=True) as run:
                mlflow.log_params(candidate["params"])
                mlflow.log_metrics(
                    {k: float(v) for k, v in candidate["metrics"].items() if v == v}  # drop NaN
                )
                mlflow.set_tags(candidate.get("tags", {}))
                if self._log_models:
                    log_sklearn_model(candidate["model"], data["input_example"], data["logging"])
                self.logged_runs[name] = run.info.run_id
            logger.info("Logged candidate %s as MLflow run %s", name, run.info.run_id)

    def _load(self) -> dict[str, Any]:
        raise DatasetError(
            "candidate_runs is write-only: candidates live in MLflow child runs "
            f"({self.logged_runs or 'none logged in this session'})"
        )

    def _describe(self) -> dict[str, Any]:
        return {"run_name_prefix": self._run_name_prefix, "log_models": self._log_models}

"""Kedro datasets the monitoring pipeline reads: logs, optional evidence, MLflow runs, the clock.

(The champion with its files comes from :class:`churn_mlops.datasets.champion.
MlflowChampionDataset`, as for the evaluation gate and the export.)

* :class:`JsonLinesLogDataset` — the serving app's prediction or feedback log (rotated
  ``<prefix>-<timestamp>.jsonl`` files, docs/architecture.md) as one flat table; lines that
  do not parse become rows with a ``parse_error`` so that the diagnosis can count them.
* :class:`OptionalDataset` — any dataset, loaded as ``None`` when it does not exist yet.
* :class:`MlflowRecentRunsDataset` — the latest MLflow runs, to spot failed pipeline runs.
* :class:`ClockDataset` — the current UTC time, so that nodes stay pure (tests pin it).

All are read-only: the pipeline never writes the registry, the logs or MLflow runs here.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

EVALUATION_FOLDER = "evaluation"
LOG_COLUMNS = ["request_id", "timestamp", "model_version", "customer_id", "score", "label"]


class _ReadOnly:
    def _save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only; the monitoring never writes it")


class JsonLinesLogDataset(_ReadOnly, AbstractDataset[None, pd.DataFrame]):
    """Every ``<prefix>-*.jsonl`` file of a folder as one table (empty when there are none).

    Prediction records ``{"request_id", "timestamp", "model_version", "customer_id",
    "features": {...}, "score", "label"}`` become one row each with the features as columns;
    feedback records keep their own fields. A line that is not a JSON object gives a row whose
    ``parse_error`` says why and where (file and line number).

    Args:
        path: The log folder (``PREDICTION_LOG_DIR`` of the serving app).
        prefix: ``predictions`` or ``feedback``.
        metadata: Kedro-viz and other free-form metadata.
    """

    def __init__(self, *, path: str, prefix: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._prefix = prefix
        self.metadata = metadata

    def _files(self) -> list[Path]:
        if not self._path.is_dir():
            return []
        return sorted(self._path.glob(f"{self._prefix}-*.jsonl"))

    def _load(self) -> pd.DataFrame:
        records: list[dict[str, Any]] = []
        for file in self._files():
            with file.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        if not isinstance(record, dict):
                            raise ValueError(f"a JSON {type(record).__name__}, not an object")
                    except ValueError as exc:
                        records.append({"parse_error": f"{file.name}:{number}: {exc}"})
                        continue
                    features = record.pop("features", None)
                    if isinstance(features, dict):
                        record.update({f"features.{k}": v for k, v in features.items()})
                    records.append(record)
        frame = pd.DataFrame.from_records(records)
        for column in (*LOG_COLUMNS, "parse_error"):
            if column not in frame.columns:
                frame[column] = pd.Series(dtype="object")
        if "timestamp" in frame:
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce")
        logger.info(
            "Read %d %s record(s) from %d file(s) in %s",
            len(frame),
            self._prefix,
            len(self._files()),
            self._path,
        )
        return frame

    def _exists(self) -> bool:
        return bool(self._files())

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "prefix": self._prefix}


class OptionalDataset(_ReadOnly, AbstractDataset[None, Any]):
    """Load ``dataset`` (any catalog entry config) or ``None`` when it does not exist yet.

    Monitoring reads some evidence (the data-processing validation report, say) that a
    deployment may not have; a missing file is then "no evidence", not a failed run.

    Args:
        dataset: The wrapped dataset's configuration, as in a catalog entry.
        metadata: Kedro-viz and other free-form metadata.
    """

    def __init__(self, *, dataset: dict[str, Any], metadata: dict[str, Any] | None = None):
        self._dataset = AbstractDataset.from_config("optional", dict(dataset))
        self.metadata = metadata

    def _load(self) -> Any:
        if not self._dataset.exists():
            logger.info("Optional input %s does not exist yet; using None", self._dataset)
            return None
        return self._dataset.load()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": str(self._dataset)}


class MlflowRecentRunsDataset(_ReadOnly, AbstractDataset[None, pd.DataFrame]):
    """The latest finished or failed MLflow runs (all experiments), newest first.

    Args:
        max_runs: How many runs to return.
        metadata: Kedro-viz and other free-form metadata.

    Returns on load:
        Columns ``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time`` (UTC);
        empty when tracking is unreachable, which the freshness check then reports.
    """

    COLUMNS = ["run_id", "run_name", "status", "start_time", "end_time"]

    def __init__(self, *, max_runs: int = 20, metadata: dict[str, Any] | None = None) -> None:
        self._max_runs = int(max_runs)
        self.metadata = metadata

    def _load(self) -> pd.DataFrame:
        import mlflow

        try:
            runs = mlflow.search_runs(
                search_all_experiments=True,
                filter_string="attributes.status != 'RUNNING'",
                max_results=self._max_runs,
                order_by=["attributes.start_time DESC"],
                output_format="list",
            )
        except mlflow.exceptions.MlflowException as exc:
            logger.warning("Cannot list recent MLflow runs: %s", exc)
            return pd.DataFrame(columns=self.COLUMNS)

        def when(ms: int | None) -> pd.Timestamp:
            return pd.Timestamp(ms, unit="ms", tz="UTC") if ms else pd.NaT

        return pd.DataFrame(
            [
                {
                    "run_id": run.info.run_id,
                    "run_name": run.info.run_name,
                    "status": run.info.status,
                    "start_time": when(run.info.start_time),
                    "end_time": when(run.info.end_time),
                }
                for run in runs
            ],
            columns=self.COLUMNS,
        )

    def _describe(self) -> dict[str, Any]:
        return {"max_runs": self._max_runs}


class ClockDataset(_ReadOnly, AbstractDataset[None, datetime]):
    """The current time (UTC) on load: model age and staleness are measured against it.

    Args:
        fixed: An ISO timestamp to return instead of now (replaying a past decision).
        metadata: Kedro-viz and other free-form metadata.
    """

    def __init__(self, *, fixed: str | None = None, metadata: dict[str, Any] | None = None):
        self._fixed = fixed
        self.metadata = metadata

    def _load(self) -> datetime:
        if self._fixed:
            value = datetime.fromisoformat(self._fixed)
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return datetime.now(timezone.utc)

    def _describe(self) -> dict[str, Any]:
        return {"fixed": self._fixed}

"""Read-only dataset: everything the registry holds for the champion, for the export pipeline.

The alias is resolved to a version ONCE, and every file is then read from that version, so a
promotion that lands while the export runs cannot mix two versions in one bundle.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from churn_mlops.contracts.artifacts import (
    GOLDEN_SAMPLE_FILE,
    METADATA_FILE,
    MODEL_CARD_FILE,
    REFERENCE_PROFILE_FILE,
)
from churn_mlops.registry import ChampionRegistry

logger = logging.getLogger(__name__)


class MlflowChampionReleaseDataset(AbstractDataset[None, dict[str, Any]]):
    """The version behind an alias, with its model, evaluation files and lineage tags.

    Args:
        model_name: Registered model name.
        alias: Alias to export (``champion``).
        metadata: Kedro-viz and other free-form metadata.

    Returns on load::

        {"model_name", "version", "run_id", "model_uri", "created_at", "aliases",
         "tags": {...},                    # data_fingerprint, git_commit, test metrics, ...
         "model": Pipeline,                # loaded with the MLflow sklearn flavor
         "model_metadata": {...}, "model_card": str, "reference_profile": {...},
         "golden_sample": DataFrame | None}  # None when the version does not carry one

    Raises:
        DatasetError: the model has no such alias, or the version lacks an evaluation file
            (the message names the version and the file).
    """

    def __init__(
        self, *, model_name: str, alias: str = "champion", metadata: dict[str, Any] | None = None
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self.metadata = metadata

    def _load(self) -> dict[str, Any]:
        import mlflow  # noqa: PLC0415 - `import mlflow` costs seconds
        import mlflow.sklearn  # noqa: PLC0415
        import pandas as pd  # noqa: PLC0415

        registry = ChampionRegistry(self._model_name, champion_alias=self._alias)
        version = registry.champion_version()
        if version is None:
            raise DatasetError(
                f"registered model {self._model_name!r} has no {self._alias!r} alias, so there"
                " is nothing to export: run `kedro run` (training and evaluation register and"
                " gate a model) or promote a version with `kedro models promote`"
            )
        details = registry.client.get_model_version(self._model_name, version)
        uri = f"models:/{self._model_name}/{version}"
        with tempfile.TemporaryDirectory(prefix="churn-champion-") as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            files = {}
            for name in (METADATA_FILE, MODEL_CARD_FILE, REFERENCE_PROFILE_FILE):
                if not (local / name).is_file():
                    raise DatasetError(
                        f"{self._model_name} v{version} ({uri}) has no {name}; it was not"
                        " registered by the evaluation pipeline, so it cannot be exported"
                    )
                files[name] = (local / name).read_text(encoding="utf-8")
            model = mlflow.sklearn.load_model(str(local))
            golden_path = local / GOLDEN_SAMPLE_FILE
            golden = pd.read_parquet(golden_path) if golden_path.is_file() else None
        logger.info(
            "Loaded %s v%s (%r) from the registry%s",
            self._model_name,
            version,
            self._alias,
            "" if golden is None else f" with a {len(golden)}-row golden sample",
        )
        return {
            "model_name": self._model_name,
            "version": str(version),
            "run_id": details.run_id,
            "model_uri": uri,
            "created_at": datetime.fromtimestamp(
                details.creation_timestamp / 1000, tz=timezone.utc
            ).isoformat(timespec="seconds"),
            "aliases": sorted(details.aliases or []),
            "tags": dict(details.tags or {}),
            "model": model,
            "model_metadata": json.loads(files[METADATA_FILE]),
            "model_card": files[MODEL_CARD_FILE],
            "reference_profile": json.loads(files[REFERENCE_PROFILE_FILE]),
            "golden_sample": golden,
        }

    def _save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only (alias {self._alias!r})")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}

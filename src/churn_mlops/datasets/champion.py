"""The one "champion" dataset: the registered version behind an alias, its model and its files.

Built on kedro-mlflow's :class:`~kedro_mlflow.io.models.MlflowModelRegistryDataset` (``alias``
and ``flavor`` as there). The alias is resolved to a version ONCE per load and the model and
every file are then read from that version (``models:/<name>/<version>``), so a promotion that
lands while a pipeline runs cannot mix two versions.

The evaluation gate, the export and the monitoring read the champion through it; the catalog
entry says which files each needs (``required_files``) and what a missing champion means
(``if_missing``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from kedro.io import DatasetError
from kedro_mlflow.io.models import MlflowModelRegistryDataset

from churn_mlops.contracts.artifacts import (
    GOLDEN_SAMPLE_FILE,
    METADATA_FILE,
    MODEL_CARD_FILE,
    REFERENCE_PROFILE_FILE,
)

logger = logging.getLogger(__name__)

#: Files a version may carry (all logged inside the model's folder at registration).
VERSION_FILES = (METADATA_FILE, REFERENCE_PROFILE_FILE, MODEL_CARD_FILE, GOLDEN_SAMPLE_FILE)

IF_MISSING = ("error", "none")


class MlflowChampionDataset(MlflowModelRegistryDataset):
    """Read-only: the version behind ``alias`` with its model, files and lineage.

    Args:
        model_name: Registered model name.
        alias: The alias to load (``champion``).
        flavor: MLflow flavor module that loads the model (``mlflow.sklearn``: the fitted
            Pipeline itself).
        required_files: Files of :data:`VERSION_FILES` the version must carry; a missing one
            is a :class:`DatasetError` naming the version and the file. The others are ``None``
            when absent.
        if_missing: What a model without the alias loads as: ``"error"`` (a
            :class:`DatasetError` saying how to get a champion) or ``"none"`` (``None``: the
            first evaluation has no champion to compare with).
        load_args: Keyword arguments of the flavor's ``load_model``.
        metadata: Kedro-viz and other free-form metadata.

    Returns on load::

        {"model_name", "version", "run_id", "model_uri", "registered_at" (aware UTC datetime),
         "aliases": [...], "tags": {...}, "model": Pipeline,
         "model_metadata": dict | None, "reference_profile": dict | None,
         "model_card": str | None, "golden_sample": DataFrame | None}

        or ``None`` when there is no champion and ``if_missing`` is ``"none"``.
    """

    def __init__(
        self,
        model_name: str,
        alias: str = "champion",
        *,
        flavor: str = "mlflow.sklearn",
        required_files: list[str] | tuple[str, ...] = (METADATA_FILE, REFERENCE_PROFILE_FILE),
        if_missing: Literal["error", "none"] = "error",
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            model_name=model_name,
            alias=alias,
            flavor=flavor,
            load_args=load_args,
            metadata=metadata,
        )
        unknown = sorted(set(required_files) - set(VERSION_FILES))
        if unknown:
            raise DatasetError(
                f"{type(self).__name__}({model_name!r}): required_files {unknown} are not files "
                f"a version carries; expected some of {list(VERSION_FILES)}"
            )
        if if_missing not in IF_MISSING:
            raise DatasetError(
                f"{type(self).__name__}({model_name!r}): if_missing={if_missing!r}; expected "
                f"one of {list(IF_MISSING)}"
            )
        self._required_files = tuple(required_files)
        self._if_missing = if_missing

    def _load(self) -> dict[str, Any] | None:
        import mlflow

        client = mlflow.MlflowClient()
        try:
            details = client.get_model_version_by_alias(self.model_name, self.alias)
        except mlflow.exceptions.MlflowException as exc:
            if self._if_missing == "none":
                logger.info("Registered model %r has no %r yet", self.model_name, self.alias)
                return None
            raise DatasetError(
                f"Registered model {self.model_name!r} has no version with alias "
                f"{self.alias!r} at {mlflow.get_tracking_uri()}: run `kedro run` (training and "
                "evaluation register and gate a model) or promote a version with "
                "`kedro models promote`."
            ) from exc
        version = str(details.version)
        uri = f"models:/{self.model_name}/{version}"
        with tempfile.TemporaryDirectory(prefix="churn-champion-") as tmp:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
            files = self._read_files(local, version)
            model = self._mlflow_model_module.load_model(str(local), **self._load_args)
        logger.info("Loaded %s v%s (%r) from the registry", self.model_name, version, self.alias)
        return {
            "model_name": self.model_name,
            "version": version,
            "run_id": details.run_id,
            "model_uri": uri,
            "registered_at": datetime.fromtimestamp(
                details.creation_timestamp / 1000, tz=timezone.utc
            ),
            "aliases": sorted(details.aliases or []),
            "tags": dict(details.tags or {}),
            "model": model,
            "model_metadata": files[METADATA_FILE],
            "reference_profile": files[REFERENCE_PROFILE_FILE],
            "model_card": files[MODEL_CARD_FILE],
            "golden_sample": files[GOLDEN_SAMPLE_FILE],
        }

    def _read_files(self, folder: Path, version: str) -> dict[str, Any]:
        import pandas as pd

        files: dict[str, Any] = {}
        for name in VERSION_FILES:
            path = folder / name
            if not path.is_file():
                if name in self._required_files:
                    raise DatasetError(
                        f"{self.model_name} v{version} (alias {self.alias!r}) has no {name}; it "
                        "was not registered by the evaluation pipeline, so it cannot be used here"
                    )
                files[name] = None
            elif name.endswith(".json"):
                try:
                    files[name] = json.loads(path.read_text(encoding="utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise DatasetError(
                        f"{self.model_name} v{version}: {name} is not readable JSON: {exc}"
                    ) from exc
            elif name.endswith(".parquet"):
                files[name] = pd.read_parquet(path)
            else:
                files[name] = path.read_text(encoding="utf-8")
        return files

    def _save(self, data: Any) -> None:
        raise DatasetError(
            f"{type(self).__name__} is read-only (alias {self.alias!r}); models are registered "
            "by MlflowModelRegistrationDataset"
        )

    def _describe(self) -> dict[str, Any]:
        return {
            **super()._describe(),
            "required_files": list(self._required_files),
            "if_missing": self._if_missing,
        }

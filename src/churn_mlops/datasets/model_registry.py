"""The dataset that writes the MLflow model registry for the evaluation pipeline.

:class:`MlflowModelRegistrationDataset` logs the trained model with its evaluation files
(metadata, model card, reference profile, golden sample),
registers a new version, tags it, points ``challenger`` at it and applies the gate decision
computed by a node. The champion is read back by
:class:`churn_mlops.datasets.champion.MlflowChampionDataset`.

Registry calls are I/O, so they live here and nodes stay pure: the decision is computed by
``decide_promotion``; this dataset only carries it out.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from churn_mlops.contracts.artifacts import (
    GOLDEN_SAMPLE_FILE,
    METADATA_FILE,
    MODEL_CARD_FILE,
    REFERENCE_PROFILE_FILE,
)
from churn_mlops.datasets._model_logging import log_sklearn_model
from churn_mlops.fingerprint import PACKAGE_LOCK_TAG, installed_packages, packages_fingerprint
from churn_mlops.provenance import git_revision
from churn_mlops.registry import RUN_ID_TOKEN, VERSION_TOKEN, ChampionRegistry

logger = logging.getLogger(__name__)

#: MLflow tag values are capped; longer values are cut with a marker.
_MAX_TAG_LENGTH = 5000


class MlflowModelRegistrationDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Register the trained model as a new version and carry out the gate decision.

    ``save`` takes the dictionary built by ``prepare_model_registration``::

        {"model": Pipeline, "input_example": DataFrame, "logging": {...},
         "tags": {str: str}, "metadata": {...}, "model_card": str,
         "reference_profile": {...}, "golden_sample": DataFrame,
         "decision": {"promote": bool, "reason": str, "champion_version": str | None}}

    and, in this order: logs the model to the active run (signature, input example, the
    reference profile, model card, metadata and ``golden_sample.parquet`` inside the model's
    folder, where ``MlflowChampionDataset`` reads them), registers it as a
    new version with the tags plus the git commit, writes ``model_metadata.json`` (now with
    the version and run id) and the model card locally, points ``challenger`` at the version,
    and then moves ``champion`` only if the decision says so *and* the champion is still the
    version the decision was made against. A refused promotion is logged with its reason and
    stored as version tags; no alias other than ``challenger`` changes.

    Args:
        model_name: Registered model name.
        metadata_filepath: Local copy of ``model_metadata.json``.
        model_card_filepath: Local copy of the model card.
        champion_alias: Alias of the serving version.
        challenger_alias: Alias of the newest registered version.
        metadata: Kedro-viz and other free-form metadata.
    """

    def __init__(
        self,
        *,
        model_name: str,
        metadata_filepath: str,
        model_card_filepath: str,
        champion_alias: str = "champion",
        challenger_alias: str = "challenger",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_name = model_name
        self._metadata_filepath = Path(metadata_filepath)
        self._model_card_filepath = Path(model_card_filepath)
        self._champion_alias = champion_alias
        self._challenger_alias = challenger_alias
        self._logging_activated = True  # switched off by kedro-mlflow for untracked pipelines
        self.metadata = metadata
        self._last: dict[str, Any] | None = None

    # ----------------------------------------------------------------- save

    def _save(self, data: dict[str, Any]) -> None:
        missing = {
            "model",
            "input_example",
            "logging",
            "tags",
            "metadata",
            "model_card",
            "reference_profile",
            "golden_sample",
            "decision",
        } - set(data)
        if missing:
            raise DatasetError(f"model registration payload lacks {sorted(missing)}")
        if not self._logging_activated:
            logger.warning(
                "MLflow tracking is off for this pipeline: %r is NOT registered; only the "
                "local model card and metadata (without a version) are written",
                self._model_name,
            )
            self._write_local(data["metadata"], data["model_card"])
            return

        import mlflow

        started_here = mlflow.active_run() is None
        run = mlflow.active_run() or mlflow.start_run(run_name="model_registration")
        try:
            self._last = self._register(mlflow, run.info.run_id, data)
        finally:
            if started_here:
                mlflow.end_run()

    def _register(self, mlflow: Any, run_id: str, data: dict[str, Any]) -> dict[str, Any]:
        registry = ChampionRegistry(
            self._model_name,
            champion_alias=self._champion_alias,
            challenger_alias=self._challenger_alias,
        )
        info = log_sklearn_model(
            data["model"],
            data["input_example"],
            data["logging"],
            metadata={"features": [f["name"] for f in data["metadata"].get("features", [])]},
        )
        tags = {
            **{k: _tag_value(v) for k, v in data["tags"].items()},
            "git_commit": git_revision(),
            PACKAGE_LOCK_TAG: packages_fingerprint(installed_packages()),
            "gate.decision": "promote" if data["decision"]["promote"] else "refuse",
            "gate.reason": _tag_value(data["decision"]["reason"]),
        }
        version = str(mlflow.register_model(info.model_uri, self._model_name, tags=tags).version)

        metadata = {**data["metadata"], "model_version": version, "run_id": run_id}
        card = data["model_card"].replace(VERSION_TOKEN, version).replace(RUN_ID_TOKEN, run_id)
        self._write_local(metadata, card)
        _log_version_files(mlflow, registry, info.model_id, metadata, card, data)
        registry.set_challenger(version)
        mlflow.set_tags({"registered_model": self._model_name, "registered_version": version})

        outcome = self._apply_decision(registry, version, data["decision"])
        mlflow.set_tag("gate.outcome", outcome["outcome"])
        return {
            "model_name": self._model_name,
            "version": version,
            "run_id": run_id,
            "model_uri": info.model_uri,
            **outcome,
        }

    def _apply_decision(
        self, registry: ChampionRegistry, version: str, decision: dict[str, Any]
    ) -> dict[str, Any]:
        current = registry.champion_version()
        expected = decision.get("champion_version")
        if decision["promote"] and current != expected:
            reason = (
                f"champion moved from v{expected} to v{current} while this run was "
                "evaluating; the gate must be re-run against the new champion"
            )
            promote = False
        else:
            promote, reason = bool(decision["promote"]), str(decision["reason"])
        if promote:
            registry.promote(version, reason=reason)
            logger.info(
                "Gate PROMOTED %s v%s to %r: %s",
                self._model_name,
                version,
                self._champion_alias,
                reason,
            )
            return {"outcome": "promoted", "reason": reason, "champion_version": version}
        registry.client.set_model_version_tag(
            self._model_name, version, "gate.reason", _tag_value(reason)
        )
        registry.client.set_model_version_tag(self._model_name, version, "gate.decision", "refuse")
        logger.warning(
            "Gate REFUSED %s v%s (%r stays %s): %s",
            self._model_name,
            version,
            self._champion_alias,
            f"v{current}" if current else "unset",
            reason,
        )
        return {"outcome": "refused", "reason": reason, "champion_version": current}

    def _write_local(self, metadata: dict[str, Any], card: str) -> None:
        _atomic_write(self._metadata_filepath, json.dumps(metadata, indent=2))
        _atomic_write(self._model_card_filepath, card)

    # ----------------------------------------------------------------- load

    def _load(self) -> dict[str, Any]:
        """The outcome of the last registration in this session, else the registry's state."""
        if self._last is not None:
            return dict(self._last)
        registry = ChampionRegistry(
            self._model_name,
            champion_alias=self._champion_alias,
            challenger_alias=self._challenger_alias,
        )
        versions = registry.versions()
        if not versions:
            raise DatasetError(f"registered model {self._model_name!r} has no versions yet")
        return {
            "model_name": self._model_name,
            "version": versions[0].version,
            "run_id": versions[0].run_id,
            "champion_version": registry.champion_version(),
        }

    def _exists(self) -> bool:
        return self._last is not None

    def _describe(self) -> dict[str, Any]:
        return {
            "model_name": self._model_name,
            "metadata_filepath": str(self._metadata_filepath),
            "model_card_filepath": str(self._model_card_filepath),
            "champion_alias": self._champion_alias,
            "challenger_alias": self._challenger_alias,
        }


def _log_version_files(
    mlflow: Any,
    registry: ChampionRegistry,
    model_id: str,
    metadata: dict[str, Any],
    card: str,
    data: dict[str, Any],
) -> None:
    """Log the version's files into the model's folder; metadata and card also to the run."""
    with tempfile.TemporaryDirectory() as folder:
        texts = {
            METADATA_FILE: json.dumps(metadata, indent=2),
            MODEL_CARD_FILE: card,
            REFERENCE_PROFILE_FILE: json.dumps(data["reference_profile"], indent=2),
        }
        for name, content in texts.items():
            (Path(folder) / name).write_text(content, encoding="utf-8")
        data["golden_sample"].to_parquet(Path(folder) / GOLDEN_SAMPLE_FILE, index=False)
        for name in [*texts, GOLDEN_SAMPLE_FILE]:
            registry.client.log_model_artifact(model_id, str(Path(folder) / name))
        # The profile is already in the run (evaluation/...); the sample is the version's own.
        for name in (METADATA_FILE, MODEL_CARD_FILE):
            mlflow.log_artifact(str(Path(folder) / name))


def _tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_TAG_LENGTH else text[: _MAX_TAG_LENGTH - 3] + "..."


def _atomic_write(path: Path, content: str) -> None:
    """Write via a temporary file and rename, so a failed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

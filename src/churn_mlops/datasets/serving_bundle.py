"""Write-side dataset of the export pipeline: the serving bundle folder.

Thin on purpose: ``save`` hands what the ``assemble_serving_bundle`` node decided to the release
tool that builds the bundle (:mod:`churn_mlops.release.bundle`: wheels, project wheel, hashed
requirements, k8s manifests, the parity gate, manifest.json, atomic rename) and remembers where
it went; ``load`` returns that bundle's manifest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from churn_mlops.release.bundle import MANIFEST_FILE, ServingBundleBuilder


class ServingBundleDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Write a serving bundle (built by :class:`ServingBundleBuilder`); load its manifest.

    Args:
        wheel_cache_dir, pip_download_args, project_source_dir, k8s_source_dir, parity: the
            builder's options (see :class:`churn_mlops.release.bundle.ServingBundleBuilder`).
        metadata: Kedro-viz and other free-form metadata.
    """

    def __init__(
        self,
        *,
        wheel_cache_dir: str,
        pip_download_args: list[str] | None = None,
        project_source_dir: str | None = None,
        k8s_source_dir: str | None = None,
        parity: dict[str, float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._builder = ServingBundleBuilder(
            wheel_cache_dir=wheel_cache_dir,
            pip_download_args=pip_download_args,
            project_source_dir=project_source_dir,
            k8s_source_dir=k8s_source_dir,
            parity=parity,
        )
        self.metadata = metadata
        self._last_bundle: Path | None = None

    def _save(self, data: dict[str, Any]) -> None:
        self._last_bundle = self._builder.build(data)

    def _load(self) -> dict[str, Any]:
        """The manifest of the bundle written by the last ``save`` in this session."""
        if self._last_bundle is None:
            raise DatasetError("no serving bundle has been written in this session")
        path = self._last_bundle / MANIFEST_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from exc

    def _exists(self) -> bool:
        return self._last_bundle is not None and (self._last_bundle / MANIFEST_FILE).is_file()

    def _describe(self) -> dict[str, Any]:
        return self._builder.describe()


__all__ = ["ServingBundleDataset"]

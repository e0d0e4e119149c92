"""The Feast feature repository as a catalog entry (load only).

Loading gives a :class:`~churn_mlops.feature_store.repository.FeatureRepository`: the nodes of
the ``feature_store`` and ``batch_scoring`` pipelines call its methods (register, materialize,
point-in-time training sets). Feast's registry and online store are its persistent state, not
a file this dataset writes, so ``save`` is refused.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from churn_mlops.feature_store.repository import DEFAULT_YAML, FeatureRepository


class FeatureRepositoryDataset(AbstractDataset[None, FeatureRepository]):
    """Feast feature repository folder (``feature_store.yaml`` + registry + online store).

    Example (``conf/base/catalog_feature_store.yml``)::

        feature_repository:
          type: churn_mlops.datasets.feature_store.FeatureRepositoryDataset
          repo_path: feature_repo
          fs_yaml_file: feature_store.yaml
          offline_source: data/05_model_input/model_input_table.parquet
    """

    def __init__(
        self,
        *,
        repo_path: str,
        offline_source: str,
        fs_yaml_file: str = DEFAULT_YAML,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            repo_path: The feature repository folder.
            offline_source: The Parquet file of ``model_input_table`` (the offline source).
            fs_yaml_file: Configuration file inside ``repo_path`` (``feature_store.yaml``:
                SQLite online store; ``feature_store.redis.yaml``: Redis).
            metadata: Free-form metadata (kedro-viz layer).
        """
        self._repo_path = repo_path
        self._offline_source = offline_source
        self._fs_yaml_file = fs_yaml_file
        self.metadata = metadata

    def load(self) -> FeatureRepository:
        """Open the repository (Feast connects lazily, on the first call)."""
        return FeatureRepository(
            self._repo_path, fs_yaml_file=self._fs_yaml_file, offline_source=self._offline_source
        )

    def save(self, data: None) -> None:
        """Refused: the repository changes only through its methods (apply, materialize)."""
        raise DatasetError(
            "feature_repository is read-only in the catalog: nodes register and materialize "
            "through the loaded FeatureRepository"
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "repo_path": self._repo_path,
            "fs_yaml_file": self._fs_yaml_file,
            "offline_source": self._offline_source,
        }

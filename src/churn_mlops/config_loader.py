"""The project's config loader: an environment states only what differs from ``conf/base``.

Kedro's ``OmegaConfigLoader`` resolves ``conf/base`` and the run environment separately and
then merges them, so a derived value such as ``training.split.purge_days:
${feature_engineering.snapshots.label_horizon_days}`` keeps the *base* horizon when an
environment changes the horizon, and an environment cannot refer to a base key at all.
`ChurnConfigLoader` merges the raw parameter files of both (OmegaConf deep merge: mappings key
by key, lists and scalars replaced) and resolves interpolations once, afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException, OmegaConfigLoader
from omegaconf import DictConfig, OmegaConf


class ChurnConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` whose parameters are deep-merged across environments before
    interpolations resolve; every other key (catalog, mlflow, credentials, globals) loads as
    Kedro's loader does."""

    def __init__(self, conf_source: str, *args: Any, **kwargs: Any) -> None:
        # `${project_path:}` must resolve wherever the loader is built (kedro run, kedro viz,
        # a notebook, the ingestion CLI), not only after ProjectStoreHooks ran: the project
        # root is the folder holding conf/.
        from churn_mlops.tracking_store import register_project_path

        register_project_path(Path(conf_source).resolve().parent)
        super().__init__(conf_source, *args, **kwargs)

    def _resolve_from_raw_config(
        self,
        key: str,
        base_configs: dict[Path, DictConfig],
        env_configs: dict[Path, DictConfig],
        base_path: str,
        env_path: str,
        processed_files: set[Path],
    ) -> dict[str, Any]:
        if key != "parameters" or not env_configs:
            return super()._resolve_from_raw_config(
                key, base_configs, env_configs, base_path, env_path, processed_files
            )
        if not processed_files:  # pragma: no cover - env_configs is not empty here
            raise MissingConfigException(f"No parameter files in {base_path} or {env_path}")
        merged = OmegaConf.unsafe_merge(
            *base_configs.values(), *env_configs.values(), self.runtime_params
        )
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]

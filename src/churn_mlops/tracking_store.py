"""The project's MLflow store belongs to the project folder, wherever Kedro starts and wherever the
folder is copied or moved.

- The ``project_path`` config resolver (``${project_path:}`` in ``conf/*/mlflow.yml``) is the
  absolute project root, so the default ``sqlite:///${project_path:}/mlflow.db`` is the same
  file from the CLI, a notebook (kernel in ``notebooks/``), kedro-viz or a subfolder. Relative
  ``sqlite:///mlflow.db`` would follow the working directory instead.
- MLflow records absolute artifact paths (``file:///<project>/mlruns/...``) in ``mlflow.db``.
  When the project folder is copied or moved, :func:`relocate_store` rewrites the paths that
  point into another folder's ``mlruns/`` so that the copy reads and writes only its own
  artifacts. :class:`ProjectStoreHooks` does it when a session starts, before kedro-mlflow
  opens the store.
- kedro-mlflow names a run after its pipelines (``training+evaluation``); Kedro's CLI hands
  ``--pipelines`` over in set order, which changes from one process to the next.
  :class:`ProjectStoreHooks` puts them in the order of the default flow first, so one command
  always gives one run name.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from omegaconf import OmegaConf

if TYPE_CHECKING:
    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)

#: Name of the config resolver that returns the project root (``${project_path:}``).
PROJECT_PATH_RESOLVER = "project_path"
#: Folder of the project's artifacts, next to ``mlflow.db`` (``artifact_location`` in mlflow.yml).
ARTIFACTS_FOLDER = "mlruns"

#: Every column in which MLflow's SQL store records an artifact location (MLflow 3 schema).
ARTIFACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def register_project_path(project_path: Path) -> None:
    """Make ``${project_path:}`` resolve to ``project_path`` (absolute, POSIX spelling)."""
    root = Path(project_path).resolve().as_posix()
    # OmegaConf 2.4 renamed register_new_resolver (which now warns) to register_resolver.
    register = getattr(OmegaConf, "register_resolver", None) or OmegaConf.register_new_resolver
    register(PROJECT_PATH_RESOLVER, lambda: root, replace=True)


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, or ``None`` for any other kind of store."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    # sqlite:////abs/path -> path "//abs/path"; sqlite:///rel -> "/rel" (relative to the cwd).
    path = unquote(parsed.path)
    return Path(path[1:]) if path.startswith("//") else Path(path.lstrip("/")).resolve()


def _foreign_roots(connection: sqlite3.Connection, artifacts_dir: Path) -> set[str]:
    """The ``file://…/mlruns`` prefixes recorded in the store that are not ``artifacts_dir``."""
    own = artifacts_dir.as_uri()
    roots: set[str] = set()
    for (location,) in connection.execute("SELECT artifact_location FROM experiments"):
        if not location or not location.startswith("file://"):
            continue
        head, sep, _ = f"{location.rstrip('/')}/".partition(f"/{ARTIFACTS_FOLDER}/")
        if sep and f"{head}/{ARTIFACTS_FOLDER}" != own:
            roots.add(f"{head}/{ARTIFACTS_FOLDER}")
    return roots


def relocate_store(database: Path, artifacts_dir: Path) -> dict[str, str]:
    """Point every artifact location of ``database`` that lies in another ``mlruns/`` folder at
    ``artifacts_dir``.

    Locations outside any ``mlruns/`` folder (a cloud bucket, an explicit artifact root) are
    left alone. Idempotent: a store already in place is not written to.

    Args:
        database: The SQLite file of an MLflow tracking store.
        artifacts_dir: The ``mlruns/`` folder the store's artifacts now live in.

    Returns:
        ``{old prefix: new prefix}`` for each rewritten root (empty when nothing moved).
    """
    if not database.is_file():
        return {}
    new_root = artifacts_dir.resolve().as_uri()
    with closing(sqlite3.connect(database)) as connection:
        tables = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        if "experiments" not in tables:
            return {}
        moved = {old: new_root for old in _foreign_roots(connection, artifacts_dir.resolve())}
        if not moved:
            return {}
        with connection:  # one transaction: all columns move, or none
            for old in moved:
                old_path, new_path = unquote(urlparse(old).path), artifacts_dir.resolve().as_posix()
                for table, column in ARTIFACT_COLUMNS:
                    if table not in tables:
                        continue
                    for before, after in ((old, new_root), (old_path, new_path)):
                        connection.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, length(?) + 1) "
                            f"WHERE {column} = ? OR substr({column}, 1, length(?) + 1) = ? || '/'",
                            (after, before, before, before, before),
                        )
    return moved


def run_name_order(names: list[str]) -> list[str]:
    """``names`` in the order of the default flow (``DEFAULT_PIPELINE_ORDER``), others after it
    alphabetically: ``["evaluation", "training"]`` -> ``["training", "evaluation"]``."""
    from churn_mlops.pipeline_registry import DEFAULT_PIPELINE_ORDER

    flow = {name: index for index, name in enumerate(DEFAULT_PIPELINE_ORDER)}
    return sorted(dict.fromkeys(names), key=lambda name: (flow.get(name, len(flow)), name))


class ProjectStoreHooks:
    """Resolve ``${project_path:}``, move a copied store's artifact paths home, and name runs
    deterministically, each before kedro-mlflow's hook of the same name.

    ``tryfirst``: kedro-mlflow's own ``after_context_created`` reads ``mlflow.yml`` (which needs
    the resolver) and opens the store (which must already point at this project's ``mlruns/``).
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        """Register the resolver, then relocate the project's own SQLite store if it moved."""
        project = Path(context.project_path).resolve()
        register_project_path(project)
        try:
            server = context.config_loader["mlflow"].get("server") or {}
        except MissingConfigException:
            return
        database = sqlite_file(str(server.get("mlflow_tracking_uri") or ""))
        # Only the project's own store: a shared store named by MLFLOW_TRACKING_URI is not ours.
        if database is None or not database.resolve().is_relative_to(project):
            return
        for old, new in relocate_store(database, project / ARTIFACTS_FOLDER).items():
            logger.info("MLflow store %s was moved: artifact paths %s -> %s", database, old, new)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Put the requested pipelines in flow order before kedro-mlflow names the run after them.

        ``run_params`` is the one record every ``before_pipeline_run`` hook receives, so the
        list is sorted in place.
        """
        names = run_params.get("pipeline_names")
        if isinstance(names, list) and len(names) > 1:
            names[:] = run_name_order(names)

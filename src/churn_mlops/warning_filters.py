"""The third-party warnings a normal run would print, silenced in this one place.

Each entry is a deprecation or advice inside a library the project depends on, that a user can
do nothing about and that reads like a failure in the middle of a run's log. Warnings raised by
the project itself, and any other library warning, still show. Remove an entry when the library
that raises it is upgraded past it (``tests/test_quiet_runs.py`` runs a pipeline and fails on any
warning in its output).
"""

from __future__ import annotations

import warnings

#: ``(category, message regex, module regex)`` of each known warning; see ``warnings.filterwarnings``.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # MLflow asks every PythonModel (kedro-mlflow's KedroPipelineModel, ours) for type hints.
    (UserWarning, r".*Add type hints to the `predict` method", r"mlflow\."),
    # OmegaConf 2.4 renamed the resolver registration that Kedro and kedro-mlflow call.
    (UserWarning, r"register_new_resolver\(\) is deprecated", r""),
    # kedro-mlflow's config models use pydantic v1's class-based `Config`.
    (DeprecationWarning, r"Support for class-based `config` is deprecated", r""),
    # SQLAlchemy 2.1 deprecates a loader strategy MLflow's SQL store uses.
    (DeprecationWarning, r"The ``noload`` loader strategy is deprecated", r""),
    # A plugin's old-style import hook (Python 3.11 warns, 3.12 removes it).
    (DeprecationWarning, r"the load_module\(\) method is deprecated", r""),
    # Ibis's DuckDB backend calls DuckDB's renamed Arrow export.
    (DeprecationWarning, r"fetch_arrow_table\(\) is deprecated", r""),
)


def ignore_known_warnings() -> None:
    """Install an ``ignore`` filter for each of :data:`KNOWN_WARNINGS` (idempotent)."""
    for category, message, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)

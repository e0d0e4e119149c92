"""The third-party warnings a normal run would print, silenced in this one place.

Each entry is a deprecation or advice inside a library the project depends on, that a user can
do nothing about and that reads like a failure in the middle of a run's log. Warnings raised by
the project itself, and any other library warning, still show. Remove an entry when the library
that raises it is upgraded past it (``tests/notebooks/test_quiet_runs.py`` runs the notebooks
and ``kedro models list`` and fails on any warning in their output).
"""

from __future__ import annotations

import logging
import os
import re
import warnings

#: ``(category, message regex, module regex)`` of each known warning (``warnings.filterwarnings``).
KNOWN_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # MLflow asks every PythonModel (kedro-mlflow's KedroPipelineModel, ours) for type hints.
    (UserWarning, r".*Add type hints to the `predict` method", r""),
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
    # pandas' date-axis converter reads an attribute Matplotlib 3.11 deprecates.
    (DeprecationWarning, r"The locs attribute was deprecated in Matplotlib", r""),
    # tqdm.auto in Jupyter without ipywidgets: it falls back to a text progress bar, which works.
    (Warning, r"IProgress not found", r""),
)


#: Logger Python's warnings go to once Kedro's logging captures them (``logging.captureWarnings``).
WARNINGS_LOGGER = "py.warnings"


class KnownWarningsFilter(logging.Filter):
    """Drop the captured-warning log records of :data:`KNOWN_WARNINGS`.

    The ``ignore`` filters alone are not enough: libraries put their own filters in front of
    them (MLflow shows UserWarnings ``once`` inside its API calls, Feast sets ``once`` for
    DeprecationWarning on import), and a warning that passes reaches the log here.
    """

    def __init__(self) -> None:
        super().__init__()
        self._patterns = [re.compile(message.lstrip(".*")) for _, message, _ in KNOWN_WARNINGS]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(pattern.search(text) for pattern in self._patterns)


def ignore_known_warnings() -> None:
    """Ignore each of :data:`KNOWN_WARNINGS`, as a warning filter and in the warnings log
    (idempotent)."""
    for category, message, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    logger = logging.getLogger(WARNINGS_LOGGER)
    if not any(isinstance(existing, KnownWarningsFilter) for existing in logger.filters):
        logger.addFilter(KnownWarningsFilter())


#: MLflow draws one "Downloading artifacts" progress bar per artifact it fetches (18 for one
#: champion with its files); set to ``true`` in the environment to have them back.
ARTIFACTS_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def quiet_artifact_downloads() -> None:
    """Turn MLflow's per-artifact download bars off unless the environment asks for them."""
    os.environ.setdefault(ARTIFACTS_PROGRESS_BAR, "false")

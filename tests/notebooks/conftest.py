"""Fixtures for the notebook tests: one small, fully run project copy for the whole session,
and every notebook executed in it once."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT
from tests.notebooks.small_project import build_small_project

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
CELL_TIMEOUT_S = 600
#: Kernels run side by side: most of a notebook's time is importing and loading the project.
WORKERS = max(1, min(3, os.cpu_count() or 1))
#: Variables a user opening the notebooks does not have: the kernels run without them.
USER_UNSET = ("MLFLOW_TRACKING_URI", "KEDRO_LOGGING_CONFIG", "PYTEST_CURRENT_TEST")
#: A notebook whose second cell raises inside Kedro: proves that errors fail the run.
FAILING_NOTEBOOK = "zz_failing_cell"


def committed_notebooks() -> list[Path]:
    """The notebooks of the checkout, in their numbered order."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook: its cells as far as execution got, the error, and the time."""

    notebook: nbformat.NotebookNode
    error: Exception | None
    seconds: float


def execute_notebook(path: Path, env: dict[str, str]) -> NotebookRun:
    """Run a notebook top to bottom in a fresh kernel started in the notebook's folder.

    ``env`` is the kernel's whole environment. A cell that raises stops the run
    (``nbclient.exceptions.CellExecutionError``); the partly executed notebook is kept.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        # Generous waits: on a busy machine a kernel starts slowly, and a short IOPub wait
        # would silently drop a cell's last outputs.
        startup_timeout=180,
        iopub_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.perf_counter()
    error: Exception | None = None
    try:
        client.execute(env=env)
    except Exception as exc:  # noqa: BLE001 - reported by the test that owns this notebook
        error = exc
    return NotebookRun(notebook, error, time.perf_counter() - started)


def _write_failing_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("%load_ext kedro.ipython"),
            nbformat.v4.new_code_cell('catalog.load("no_such_dataset")'),
            nbformat.v4.new_code_cell('print("never reached")'),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(notebook, path)


@pytest.fixture(scope="session")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy on small data after one `kedro run` of the default pipeline.

    The checkout's notebooks are copied to its ``notebooks/`` folder, where the Kedro IPython
    extension finds the copy (not the checkout) as its project.
    """
    project = tmp_path_factory.mktemp("notebooks") / "project"
    build_small_project(project)
    shutil.copytree(NOTEBOOKS_DIR, project / "notebooks", dirs_exist_ok=True)
    return project


@pytest.fixture(scope="session")
def notebook_runs(small_project: Path) -> dict[str, NotebookRun]:
    """Every notebook, plus `FAILING_NOTEBOOK`, executed once in the small project.

    Kernels run as a user's do: started in ``notebooks/``, with neither MLFLOW_TRACKING_URI nor
    KEDRO_LOGGING_CONFIG set, so they find the copy's MLflow store through mlflow.yml (resolved
    against the project root) and the project's logging through ``notebooks/conf/logging.yml``
    (rich tracebacks off, so a failing cell is an error, not printed text). Executed
    notebooks are saved under ``notebooks/executed/`` in the copy for debugging.
    """
    folder = small_project / "notebooks"
    _write_failing_notebook(folder / f"{FAILING_NOTEBOOK}.ipynb")
    env = {key: value for key, value in os.environ.items() if key not in USER_UNSET}
    paths = sorted(folder.glob("*.ipynb"))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        runs = dict(
            zip(
                [path.stem for path in paths],
                pool.map(lambda path: execute_notebook(path, env), paths),
                strict=True,
            )
        )
    (folder / "executed").mkdir(exist_ok=True)
    for name, run in runs.items():
        nbformat.write(run.notebook, folder / "executed" / f"{name}.ipynb")
    return runs

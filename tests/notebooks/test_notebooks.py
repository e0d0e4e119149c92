"""The notebooks: committed without outputs, clients of the package, and runnable top to bottom.

The run tests execute every notebook of ``notebooks/`` against a small project copy on which
the default pipeline has run once (``small_project`` in conftest.py), so each notebook is
checked against the real catalog, parameters, node functions and MLflow registry.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from tests.notebooks.conftest import (
    FAILING_NOTEBOOK,
    NOTEBOOKS_DIR,
    NotebookRun,
    committed_notebooks,
)

EXPECTED_NOTEBOOKS = {
    "01_explore_data",
    "02_feature_engineering",
    "03_training_and_evaluation",
    "04_explainability",
    "05_drift_investigation",
}
# Paths that tie a notebook to one machine or bypass the catalog.
FORBIDDEN = re.compile(r"(/work/|/tmp/|/home/|[A-Z]:\\\\|read_parquet\(|read_csv\(|\"data/0\d)")


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_documented_notebooks_exist() -> None:
    assert {path.stem for path in committed_notebooks()} >= EXPECTED_NOTEBOOKS


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(_code_cells(notebook))
        if cell.outputs or cell.execution_count is not None
    ]
    assert not dirty, (
        f"{path.name}: code cells {dirty} carry outputs or execution counts; strip them "
        "(`nbstripout notebooks/*.ipynb`, or `nbstripout --install` once per clone)"
    )
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}, (
        f"{path.name}: notebook metadata {sorted(notebook.metadata)} should be stripped"
    )


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda path: path.stem)
def test_notebook_is_a_client_of_the_package(path: Path) -> None:
    cells = _code_cells(nbformat.read(path, as_version=4))
    source = "\n".join(cell.source for cell in cells)
    assert cells[0].source.splitlines()[0] == "%load_ext kedro.ipython", (
        f"{path.name}: the first code cell must load the Kedro extension"
    )
    assert "catalog.load(" in source, f"{path.name}: read data through the catalog"
    assert re.search(r"^from churn_mlops\.pipelines\.\w+ import", source, re.MULTILINE), (
        f"{path.name}: call the pipelines' node functions instead of copying them"
    )
    found = FORBIDDEN.findall(source)
    assert not found, f"{path.name}: hard-coded paths or direct file reads {found}"


@pytest.mark.slow
@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path: Path, notebook_runs: dict[str, NotebookRun]) -> None:
    run = notebook_runs[path.stem]
    if run.error is not None:
        pytest.fail(f"{path.name} failed after {run.seconds:.0f} s:\n{str(run.error)[-6000:]}")
    cells = _code_cells(run.notebook)
    assert all(cell.execution_count is not None for cell in cells), "every cell ran"
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no plot"


@pytest.mark.slow
def test_a_failing_cell_fails_the_notebook_run(notebook_runs: dict[str, NotebookRun]) -> None:
    run = notebook_runs[FAILING_NOTEBOOK]
    assert isinstance(run.error, CellExecutionError), run.error
    assert "no_such_dataset" in str(run.error)
    first, failing, after = run.notebook.cells
    assert first.execution_count is not None and not [
        o for o in first.outputs if o.output_type == "error"
    ]
    assert [o.output_type for o in failing.outputs if o.output_type == "error"] == ["error"]
    assert after.execution_count is None and not after.outputs


@pytest.mark.slow
def test_nbstripout_would_change_no_committed_notebook() -> None:
    paths = [str(path) for path in committed_notebooks()]
    proc = subprocess.run(
        [sys.executable, "-m", "nbstripout", "--verify", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"nbstripout would strip: {proc.stdout}{proc.stderr}"


def test_notebooks_are_filtered_by_nbstripout() -> None:
    attributes = (NOTEBOOKS_DIR.parent / ".gitattributes").read_text(encoding="utf-8")
    assert re.search(r"^\*\.ipynb\s+.*filter=nbstripout", attributes, re.MULTILINE)
    hooks = (NOTEBOOKS_DIR.parent / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert "id: nbstripout" in hooks

"""A normal session prints the pipeline's own log and nothing alarming: no third-party
deprecation warning (churn_mlops.warning_filters) in a notebook or before a ``kedro`` table."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.notebooks.conftest import USER_UNSET, NotebookRun, committed_notebooks

#: What a warning looks like in Kedro's log or on stderr.
WARNING_LINE = re.compile(r"\bWARNING\b.*Warning:|\w+Warning: ")


def _stream_text(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda path: path.stem)
def test_notebook_prints_no_library_warning(
    path: Path, notebook_runs: dict[str, NotebookRun]
) -> None:
    lines = [
        line
        for line in _stream_text(notebook_runs[path.stem].notebook).splitlines()
        if WARNING_LINE.search(line)
    ]
    assert not lines, f"{path.name} printed warnings:\n" + "\n".join(lines[:10])
    text = _stream_text(notebook_runs[path.stem].notebook)
    assert "Downloading artifacts" not in text, f"{path.name} shows MLflow's download bars"


@pytest.mark.slow
def test_models_list_prints_the_table_and_no_warning(small_project: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in USER_UNSET}
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "models", "list"],
        cwd=small_project / "notebooks",  # a subfolder: the project's own store is still found
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "Registered model 'churn_model'" in proc.stdout
    assert re.search(r"^v\d+\s+\S*champion", proc.stdout, re.MULTILINE), proc.stdout
    assert not WARNING_LINE.search(output), output[-4000:]

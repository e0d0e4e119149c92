"""``data_processing.period`` follows the simulated period, also when ``--params`` or an
environment's files move it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_project_copy


def _params(
    project: Path, runtime_params: dict[str, Any] | None, *, env: str | None = None
) -> dict[str, Any]:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, runtime_params=runtime_params, env=env
    ) as session:
        return session.load_context().params


@pytest.mark.slow
def test_period_follows_simulation_from_files_and_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = make_project_copy(tmp_path / "project")
    default = _params(project, None)
    assert default["data_processing"]["period"] == {
        "start_date": default["simulation"]["start_date"],
        "months": default["simulation"]["n_months"],
    }
    # What `kedro run --params "simulation.n_months=30,simulation.start_date=2024-01-01"` passes.
    moved = _params(project, {"simulation": {"n_months": 30, "start_date": "2024-01-01"}})
    assert moved["simulation"]["n_months"] == 30
    assert moved["data_processing"]["period"] == {"start_date": "2024-01-01", "months": 30}


@pytest.mark.slow
def test_period_follows_an_environment_that_changes_only_the_simulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = make_project_copy(tmp_path / "project")
    (project / "conf" / "short").mkdir()
    (project / "conf" / "short" / "parameters_simulation.yml").write_text(
        "simulation:\n  n_months: 12\n  start_date: '2024-01-01'\n", encoding="utf-8"
    )
    params = _params(project, None, env="short")
    assert params["simulation"]["n_months"] == 12
    assert params["data_processing"]["period"] == {"start_date": "2024-01-01", "months": 12}

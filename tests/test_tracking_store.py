"""The project's MLflow store: one file wherever Kedro starts, and a copied project's own."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from churn_mlops.tracking_store import (
    ARTIFACT_COLUMNS,
    relocate_store,
    run_name_order,
    sqlite_file,
)
from tests.conftest import make_project_copy


def _recorded_locations(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        return [
            value
            for table, column in ARTIFACT_COLUMNS
            for (value,) in connection.execute(f"SELECT {column} FROM {table}")
            if value
        ]


def _session_store(project: Path) -> tuple[str, str]:
    """Open a Kedro session on ``project`` as a user would; the tracking URI and the
    experiment's artifact location kedro-mlflow ends up with."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        session.load_context()
        experiment = mlflow.get_experiment_by_name("churn_mlops")
        return mlflow.get_tracking_uri(), experiment.artifact_location


@pytest.fixture
def user_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MLFLOW_TRACKING_URI, and a working directory that is not the project."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # A fresh process has no tracking URI set; earlier tests in this one may have set it.
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return elsewhere


def test_sqlite_file_reads_absolute_and_relative_uris(tmp_path: Path) -> None:
    assert sqlite_file(f"sqlite:///{tmp_path}/mlflow.db") == tmp_path / "mlflow.db"
    assert sqlite_file("http://mlflow:5000") is None


def test_run_names_follow_the_default_flow_whatever_the_cli_order() -> None:
    assert run_name_order(["evaluation", "training"]) == ["training", "evaluation"]
    assert run_name_order(["monitoring", "export", "simulation"]) == [
        "simulation",
        "export",
        "monitoring",
    ]


@pytest.mark.slow
def test_a_copied_project_reads_and_writes_only_its_own_store(
    tmp_path: Path, user_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    def user_environment_reset() -> None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    original = make_project_copy(tmp_path / "original")
    uri, location = _session_store(original)
    # Resolved against the project root, not the working directory (user_environment).
    assert uri == f"sqlite:///{(original / 'mlflow.db').resolve().as_posix()}"
    assert location == (original / "mlruns").resolve().as_uri()
    assert not list(user_environment.iterdir()), "nothing written where the command ran"
    with mlflow.start_run(experiment_id="1") as run:
        mlflow.log_text("from the original", "note.txt")

    moved = tmp_path / "moved"
    shutil.copytree(original, moved)
    shutil.rmtree(original)  # the copy must not need the original
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; a new process would not have it.
    user_environment_reset()

    uri, location = _session_store(moved)
    assert uri == f"sqlite:///{(moved / 'mlflow.db').resolve().as_posix()}"
    assert location == (moved / "mlruns").resolve().as_uri()
    recorded = _recorded_locations(moved / "mlflow.db")
    assert recorded and not [v for v in recorded if str(original) in v], recorded
    client = mlflow.MlflowClient(uri)
    text = Path(client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path))).read_text()
    assert text == "from the original"
    with mlflow.start_run(experiment_id="1") as new_run:
        mlflow.log_text("from the copy", "note.txt")
    assert new_run.info.artifact_uri.startswith((moved / "mlruns").resolve().as_uri())
    assert not original.exists()


def test_relocation_leaves_a_store_in_place_and_foreign_locations_alone(tmp_path: Path) -> None:
    database = tmp_path / "mlflow.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE experiments (artifact_location TEXT)")
        connection.execute("CREATE TABLE runs (artifact_uri TEXT)")
        own = (tmp_path / "mlruns").as_uri()
        connection.executemany(
            "INSERT INTO experiments VALUES (?)", [(f"{own}/1",), ("s3://bucket/churn/2",)]
        )
        connection.execute("INSERT INTO runs VALUES (?)", (f"{own}/1/abc/artifacts",))
    assert relocate_store(database, tmp_path / "mlruns") == {}
    assert sorted(_recorded_locations_of(database)) == sorted(
        [f"{own}/1", "s3://bucket/churn/2", f"{own}/1/abc/artifacts"]
    )


def _recorded_locations_of(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT artifact_location FROM experiments").fetchall()
        rows += connection.execute("SELECT artifact_uri FROM runs").fetchall()
    return [value for (value,) in rows]

"""``kedro models list | promote | rollback`` (the project CLI) on a real MLflow registry."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from churn_mlops.cli import cli, commands
from churn_mlops.registry import ChampionRegistry

# MLflow-backed registry round trips: seconds each (make test-fast leaves them out).
pytestmark = pytest.mark.slow

MODEL = "churn_model"  # the name in conf/base/globals.yml


@pytest.fixture
def project(project_copy, mlflow_store, monkeypatch, tmp_path):
    """The project copy as working directory; ``churn_model`` has v1, v2 (passed) and v3
    (refused by the gate)."""
    monkeypatch.chdir(project_copy)
    client = MlflowClient()
    client.create_registered_model(MODEL)
    for decision in ("promote", "promote", "refuse"):
        client.create_model_version(
            MODEL,
            source=str(tmp_path),
            tags={
                "gate.decision": decision,
                "gate.reason": f"{decision} reason",
                "test.pr_auc": "0.4",
                "estimator": "XGBClassifier",
            },
        )
    yield project_copy
    client.delete_registered_model(MODEL)


def _run(*args: str):
    return CliRunner().invoke(commands, ["models", *args], catch_exceptions=False)


def test_kedro_loads_the_group_as_cli():
    assert cli is commands and "models" in commands.commands


def test_promote_list_and_rollback(project):
    first = _run("promote", "1")
    assert first.exit_code == 0, first.output
    assert "champion v- -> v1" in first.output
    assert _run("promote", "v2").exit_code == 0

    listed = _run("list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()  # logging may interleave: find the table
    start = lines.index("Registered model 'churn_model'")
    assert lines[start + 1].split()[:2] == ["version", "aliases"]
    assert [line.split()[:2] for line in lines[start + 2 : start + 5]] == [
        ["v3", "-"],
        ["v2", "champion"],
        ["v1", "-"],
    ]
    assert "Champion history (oldest first): v1 -> v2" in listed.output

    back = _run("rollback")
    assert back.exit_code == 0 and "champion v2 -> v1" in back.output
    assert ChampionRegistry(MODEL).champion_version() == "1"


def test_a_refused_version_needs_force(project):
    _run("promote", "1")
    refused = _run("promote", "3")
    assert refused.exit_code == 1
    assert "was not passed by the gate" in refused.output and "refuse reason" in refused.output
    assert ChampionRegistry(MODEL).champion_version() == "1"

    forced = _run("promote", "3", "--force", "--reason", "hotfix approved by ops")
    assert forced.exit_code == 0, forced.output
    tags = MlflowClient().get_model_version(MODEL, "3").tags
    assert tags["promotion_reason"] == "hotfix approved by ops (kedro models promote)"


def test_rollback_with_no_previous_champion_fails_cleanly(project):
    _run("promote", "2")
    result = _run("rollback")
    assert result.exit_code == 1
    assert "no previous champion" in result.output
    assert ChampionRegistry(MODEL).champion_version() == "2"


def test_unknown_version_is_named(project):
    result = _run("promote", "7")
    assert result.exit_code == 1 and "has no version '7'" in result.output

"""SparkHooks: Spark properties from spark.yml, and no Spark outside the spark environment.

Starting a real session from these properties is covered by tests/spark/ (every Kedro run
there goes through the hook); here the session builder is replaced by a recorder so that
these checks run without Java.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from churn_mlops import hooks
from churn_mlops.hooks import SparkConfigError, SparkHooks, spark_properties

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def context(env: str) -> SimpleNamespace:
    """What the hook reads from a KedroContext: its config loader for ``env``."""
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env=env,
        custom_resolvers={"oc.env": oc.env},
    )
    return SimpleNamespace(config_loader=loader)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Properties of every session the hook starts (no JVM is started)."""
    calls: list[dict[str, str]] = []

    def record(properties: dict[str, str]) -> Any:
        calls.append(dict(properties))
        spark_context = SimpleNamespace(appName="test", master=properties["spark.master"])
        return SimpleNamespace(sparkContext=spark_context, version="test")

    monkeypatch.setattr(hooks, "build_spark_session", record)
    return calls


def test_spark_environment_starts_a_session_from_spark_yml(
    started: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CHURN_SPARK_MASTER", "spark://spark-master:7077")
    SparkHooks().after_context_created(context("spark"))
    assert len(started) == 1
    properties = started[0]
    assert properties["spark.master"] == "spark://spark-master:7077"
    assert properties["spark.ui.enabled"] == "false"
    assert properties["spark.sql.session.timeZone"] == "UTC"


def test_spark_yml_defaults_to_two_local_cores(
    started: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("CHURN_SPARK_MASTER", raising=False)
    SparkHooks().after_context_created(context("spark"))
    assert started[0]["spark.master"] == "local[2]"


@pytest.mark.parametrize("env", ["local", "base"])
def test_other_environments_start_no_spark(started: list[dict[str, str]], env: str):
    SparkHooks().after_context_created(context(env))
    assert started == []


def test_properties_become_spark_strings():
    properties = spark_properties(
        {"spark.ui.enabled": False, "spark.sql.shuffle.partitions": 8, "spark.app.name": "x"}
    )
    assert properties == {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
        "spark.app.name": "x",
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"master": "local[2]"}, r"key 'master' is not a Spark property"),
        ({"spark.executor": {"memory": "4g"}}, r"key 'spark.executor' has value \{'memory'"),
        ({"spark.master": None}, r"key 'spark.master' has value None"),
    ],
)
def test_malformed_spark_yml_names_the_key(config: dict[str, Any], message: str):
    with pytest.raises(SparkConfigError, match=message):
        spark_properties(config)

"""One SparkSession shared by every Spark-marked test, and in-process Kedro runs in a project copy.

Starting Spark costs 10-30 s, so the session is created once per test run with the properties
of ``conf/spark/spark.yml`` (master forced to ``local[2]``). Kedro runs reuse it: the project's
``SparkHooks`` calls ``getOrCreate()``, which returns this session. Every test here is skipped,
with the reason (failed when ``CI`` is set), when pyspark or a Java 17/21 runtime is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT
from tests.tools import missing

#: Java versions Spark 4 supports; 17 is the documented requirement (docs/scaling.md).
SUPPORTED_JAVA = (17, 21)


def _java_major(home: Path) -> int | None:
    release = home / "release"
    if release.is_file():
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
        if match:
            return int(match.group(1))
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def find_java_home() -> Path | None:
    """A Java home Spark supports: ``JAVA_HOME`` first, then the system JVMs, 17 preferred."""
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    system = Path("/usr/lib/jvm")
    if system.is_dir():
        candidates.extend(sorted(p for p in system.iterdir() if p.is_dir()))
    found = [(home, _java_major(home)) for home in candidates]
    for wanted in SUPPORTED_JAVA:
        for home, major in found:
            if major == wanted:
                return home
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The shared local[2] SparkSession (skips the test, or fails it under CI, when Spark cannot
    run here)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing("pyspark is not installed (pip install -e '.[spark]')")
    java_home = find_java_home()
    if java_home is None:
        missing(
            f"no Java {' or '.join(map(str, SUPPORTED_JAVA))} runtime found (set JAVA_HOME; "
            "Debian: apt-get install openjdk-17-jre-headless)"
        )
    from kedro.config import OmegaConfigLoader
    from omegaconf.resolvers import oc

    from churn_mlops.hooks import (
        SPARK_CONFIG_KEY,
        SPARK_CONFIG_PATTERNS,
        build_spark_session,
        spark_properties,
    )

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAVA_HOME", str(java_home))
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        patch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        # Runtime property of conf/spark/spark.yml, applied again by every Kedro run.
        patch.setenv("CHURN_SPARK_SHUFFLE_PARTITIONS", "2")
        loader = OmegaConfigLoader(
            conf_source=str(PROJECT_ROOT / "conf"),
            base_env="base",
            default_run_env="spark",
            config_patterns={SPARK_CONFIG_KEY: SPARK_CONFIG_PATTERNS},
            custom_resolvers={"oc.env": oc.env},
        )
        properties = spark_properties(loader[SPARK_CONFIG_KEY])
        properties.update(
            {
                "spark.master": "local[2]",
                "spark.sql.shuffle.partitions": "2",
                "spark.ui.showConsoleProgress": "false",
            }
        )
        session = build_spark_session(properties)
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite tracking store for every in-process Kedro run of these tests."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def kedro_session_run(mlflow_uri: str) -> Callable[..., dict[str, Any]]:
    """Run pipelines in-process, as ``kedro run --env ENV --pipeline NAME`` in a project copy.

    In-process (not a ``kedro`` subprocess) so that Spark runs reuse the shared session instead
    of starting a JVM each; the code path (settings, hooks, catalog, runner) is the CLI's.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    def _run(
        project: Path,
        *pipelines: str,
        env: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(project)
            patch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
            bootstrap_project(project)
            with KedroSession.create(
                project_path=project, env=env, runtime_params=params or {}
            ) as session:
                return session.run(pipeline_names=list(pipelines))

    return _run

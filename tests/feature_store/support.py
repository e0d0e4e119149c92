"""Helpers of the feature store tests: a small Feast repository and a real Redis server.

:func:`build_repository` copies the project's ``feature_repo/`` next to a ``model_input_table``
file, registers the definitions the ``feature_store`` pipeline would register and
materializes them. :func:`redis_server` starts ``redis-server`` on a free 127.0.0.1 port (under
``CI`` a missing binary fails the test; elsewhere it skips with the reason).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn_mlops.feature_store.config import FeatureStoreConfig, parse_feature_store_config
from churn_mlops.feature_store.repository import FeatureRepository
from churn_mlops.pipelines.feature_store import nodes
from tests.conftest import PROJECT_ROOT
from tests.pipelines.training.synthetic import feature_list

TABLE = "data/05_model_input/model_input_table.parquet"


def store_parameters() -> dict:
    """The committed ``feature_store`` parameters."""
    path = PROJECT_ROOT / "conf" / "base" / "parameters_feature_store.yml"
    return yaml.safe_load(path.read_text())["feature_store"]


def store_config() -> FeatureStoreConfig:
    """The committed parameters validated against the synthetic feature list."""
    return parse_feature_store_config(store_parameters(), feature_list())


def write_table(root: Path, table: pd.DataFrame) -> Path:
    """Write ``table`` as the project's model_input_table under ``root``."""
    path = root / TABLE
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path)
    return path


def build_repository(
    root: Path, table: pd.DataFrame, *, fs_yaml_file: str = "feature_store.yaml"
) -> FeatureRepository:
    """A registered and materialized feature repository over ``table`` in ``root``."""
    shutil.copytree(PROJECT_ROOT / "feature_repo", root / "feature_repo", dirs_exist_ok=True)
    (root / "data" / "04_feature").mkdir(parents=True, exist_ok=True)
    source = write_table(root, table)
    repository = FeatureRepository(
        root / "feature_repo", fs_yaml_file=fs_yaml_file, offline_source=source
    )
    config = store_config()
    definitions = nodes.define_feature_views(table, config, repository)
    registration = nodes.register_feature_views(repository, definitions)
    nodes.materialize_online_features(repository, registration, table, config)
    return repository


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free 127.0.0.1 port; yields its Feast connection string."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server is not installed; CI installs it")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_env(redis_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``REDIS_CONNECTION_STRING`` pointing at the test server, flushed for this test."""
    import redis

    host, port = redis_server.split(":")
    redis.Redis(host=host, port=int(port)).flushall()
    monkeypatch.setenv("REDIS_CONNECTION_STRING", redis_server)
    return redis_server

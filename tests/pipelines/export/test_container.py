"""The exported bundle as a real container: ``docker build`` offline, ``docker run``, HTTP.

Builds the bundle's ``Dockerfile`` with its ``build-args.txt`` and the local base image (CI
makes it with ``deploy/docker/make_base_image.sh``; Docker Hub is out of reach), runs it
read-only like the Kubernetes pods, and talks to it on 127.0.0.1: readiness, Docker's own
HEALTHCHECK, a predict call with a JWT minted here (and one without), and the Prometheus
metrics. Every container and image the test creates is removed by id.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pandas as pd
import pytest

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.release.parity import golden_rows
from tests.feature_store.support import redis_server  # noqa: F401 - fixture
from tests.pipelines.export.conftest import export_env
from tests.tools import missing

# The first test builds the shared exported project too (minutes on a busy machine).
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

BASE_IMAGE = os.environ.get("CHURN_TEST_BASE_IMAGE", "local/python:3.11")
DOCKER_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


def _docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
        env=DOCKER_ENV,
    )


def _skip_reason() -> str | None:
    try:
        _docker("info", timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`docker info` fails, no Docker daemon to build the bundle's image: {exc}"
    if _docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        return (
            f"base image {BASE_IMAGE} is missing: build it with"
            " deploy/docker/make_base_image.sh (or set CHURN_TEST_BASE_IMAGE)"
        )
    return None


def _image_ids() -> set[str]:
    return set(_docker("images", "--all", "--quiet", "--no-trunc").stdout.split())


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    """Skip (fail under CI) before the expensive exported project is built when Docker cannot
    build."""
    reason = _skip_reason()
    if reason:
        missing(reason)


@pytest.fixture(scope="module")
def image(docker_daemon, exported_project) -> Iterator[str]:
    """The bundle's image, built offline from the bundle folder and its build-args.txt."""
    before = _image_ids()
    # As docs/export.md says, with the base image this machine has.
    build_args = (exported_project.bundle / "build-args.txt").read_text().split()
    build = _docker(
        "build",
        *build_args,
        "--network",
        "host",
        "--force-rm",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        str(exported_project.bundle),
        timeout=600,
        check=False,
    )
    built = re.findall(r"^Successfully built ([0-9a-f]+)$", build.stdout, flags=re.MULTILINE)
    # Every image of both stages, to remove exactly what this build made.
    steps = re.findall(r"^ ---> ([0-9a-f]{12})$", build.stdout, flags=re.MULTILINE)
    new = [i for i in _image_ids() - before]
    try:
        assert build.returncode == 0 and built, (
            f"docker build failed ({build.returncode}):\n{build.stdout[-3000:]}\n{build.stderr}"
        )
        yield built[-1]
    finally:
        for short in [*built, *reversed(steps)]:
            for full in new:
                if full.removeprefix("sha256:").startswith(short):
                    _docker("rmi", "--force", full, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_container(image: str, *options: str) -> tuple[str, str, str]:
    """Start ``image`` read-only on 127.0.0.1 with ``options``; ``(id, base URL, JWT key)``."""
    port, key = _free_port(), secrets.token_hex(32)
    cid = _docker(
        "run",
        "--detach",
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/var/lib/churn/predictions:uid=10001,gid=10001",
        "--health-interval",
        "2s",
        "--health-start-period",
        "60s",
        "-e",
        "CHURN_HOST=127.0.0.1",
        "-e",
        f"CHURN_PORT={port}",
        "-e",
        f"CHURN_JWT_KEY={key}",
        *options,
        image,
    ).stdout.strip()
    return cid, f"http://127.0.0.1:{port}", key


@pytest.fixture
def container(image: str) -> Iterator[tuple[str, str, str]]:
    """``(container id, base URL, JWT key)`` of the image running read-only on 127.0.0.1."""
    started = _run_container(image)
    try:
        yield started
    finally:
        _docker("rm", "--force", started[0], check=False)


def _wait_ready(cid: str, base: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _docker("inspect", "--format", "{{.State.Status}}", cid).stdout.strip()
        if state != "running":
            pytest.fail(f"container {state}: {_docker('logs', cid).stderr[-3000:]}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"not ready in {timeout} s: {_docker('logs', cid).stderr[-3000:]}")


def _token(key: str, scope: str = "predict") -> str:
    now = int(time.time())
    claims = {
        "sub": "container-test",
        "aud": "churn-serving",
        "iss": "churn-mlops",
        "iat": now,
        "exp": now + 300,
        "scope": scope,
    }
    return jwt.encode(claims, key, algorithm="HS256")


def test_container_answers_predict_health_and_metrics(container, exported_project):
    cid, base, key = container
    _wait_ready(cid, base)
    assert _docker("inspect", "--format", "{{.Config.User}}", cid).stdout.strip() == "10001:10001"
    assert httpx.get(f"{base}/health/live", timeout=5).status_code == 200

    golden = pd.read_parquet(exported_project.bundle / "golden_sample.parquet").head(5)
    features = [
        c for c in golden.columns if c not in {"customer_id", "snapshot_date", EXPECTED_COLUMN}
    ]
    body = {"rows": golden_rows(golden, features)}
    assert httpx.post(f"{base}/v1/predict", json=body, timeout=10).status_code == 401
    answer = httpx.post(
        f"{base}/v1/predict",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {_token(key)}"},
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["model_version"] for p in predictions] == ["1"] * 5
    served = [p["probability"] for p in predictions]
    assert served == pytest.approx(golden[EXPECTED_COLUMN].tolist(), abs=1e-6)

    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert re.search(r'churn_model_info\{[^}]*model_version="1"[^}]*\} 1\.0', metrics)
    assert re.search(r'churn_http_requests_total\{[^}]*route="/v1/predict"[^}]*\}', metrics)
    assert "churn_model_ready 1.0" in metrics

    # Docker's own HEALTHCHECK (the Python one-liner) reports the container healthy.
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline and health != "healthy":
        health = _docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()
        time.sleep(1)
    assert health == "healthy"


@pytest.fixture
def redis_feature_store(exported_project, redis_server: str) -> str:  # noqa: F811
    """The exported project's features registered and materialized into a real Redis:
    ``kedro run --env redis --pipeline feature_store``, as docs/feature_store.md says."""
    env = {**export_env(exported_project.root, exported_project.source_dir)}
    env["REDIS_CONNECTION_STRING"] = redis_server
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("kedro")), "run", "--env", "redis",
         "--pipeline", "feature_store"],
        cwd=exported_project.root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return redis_server


def test_container_scores_customers_by_id_through_feast_and_redis(
    image, exported_project, redis_feature_store, monkeypatch
):
    """The bundle of a model with feature views carries Feast: mounted repository + Redis
    connection string (as the k8s component feature-store does) -> scores by customer id,
    equal to the vector endpoint on the same online features."""
    from churn_mlops.feature_store.repository import FeatureRepository

    root = exported_project.root
    cid, base, key = _run_container(
        image,
        "--volume", f"{root / 'feature_repo'}:/opt/churn/features/feature_repo:ro",
        "--volume", f"{root / 'data' / '04_feature'}:/opt/churn/features/data/04_feature:ro",
        "-e", "CHURN_FEATURE_REPO=/opt/churn/features/feature_repo",
        "-e", "CHURN_FEATURE_STORE_YAML=feature_store.redis.yaml",
        "-e", f"REDIS_CONNECTION_STRING={redis_feature_store}",
        "-e", f"CHURN_FEATURE_MAX_AGE_S={10 * 365 * 86400}",
    )  # fmt: skip
    try:
        _wait_ready(cid, base)
        table = pd.read_parquet(root / "data" / "05_model_input" / "model_input_table.parquet")
        # Customers of the latest snapshot: materialization writes each one's latest row.
        latest = table[table["snapshot_date"] == table["snapshot_date"].max()]
        ids = sorted(latest["customer_id"].unique().tolist())[:4]
        auth = {"Authorization": f"Bearer {_token(key)}"}
        answer = httpx.post(
            f"{base}/v1/customers/predict",
            json={"customer_ids": [*ids, 987654321]},
            headers=auth,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text + _docker("logs", cid).stderr[-3000:]
        body = answer.json()
        assert body["online_store"] == "redis"
        results = body["results"]
        assert [r["status"] for r in results] == ["found"] * len(ids) + ["not_found"]
        # The same online rows, read here through Feast, scored by the vector endpoint.
        monkeypatch.setenv("REDIS_CONNECTION_STRING", redis_feature_store)
        online = FeatureRepository(
            root / "feature_repo", fs_yaml_file="feature_store.redis.yaml"
        ).online_features(ids)
        assert all(row is not None for row in online.rows)
        vector = httpx.post(
            f"{base}/v1/predict", json={"rows": online.rows}, headers=auth, timeout=30
        )
        assert vector.status_code == 200, vector.text
        expected = [p["probability"] for p in vector.json()["predictions"]]
        assert [r["probability"] for r in results[:-1]] == pytest.approx(expected, abs=1e-9)
        assert all(r["model_version"] == "1" for r in results)
    finally:
        _docker("rm", "--force", cid, check=False)

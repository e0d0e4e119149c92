"""End to end: a real Prometheus scrapes the real serving app and the drift alert fires.

Both run on 127.0.0.1 as the cluster would run them, as far as one machine allows:

* the app is started the way the container starts it (``python -m churn_mlops.serving``) with
  the ConfigMap of deploy/k8s/base (TLS on, RS256 JWT public key from a file), only paths,
  port and the drift window changed;
* Prometheus runs deploy/prometheus/prometheus.yml with Kubernetes discovery swapped for a
  file that lists the app with the labels Kubernetes discovery would give its pod, so the
  relabelling, scheme, path and TLS settings are the real ones; and the alert rules of
  deploy/prometheus/alerts.yml with every ``for:`` shortened to 1 s (expressions unchanged).

The traffic is bounded: a fixed number of requests, and every wait has a deadline.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml

from tests.deploy.conftest import DEPLOY_DIR, K8S_DIR
from tests.tools import tool

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


DRIFT_WINDOW = 200  # CHURN_DRIFT_WINDOW for the test: a small window turns over quickly
DRIFTED_FEATURE = "monthly_fee"
DRIFTED_VALUE = 400.0  # far above every plan's fee (20-95) yet inside the feature's range
SCRAPE = "1s"
STARTUP_TIMEOUT_S = 90.0
ALERT_TIMEOUT_S = 45.0
POD_LABELS = {"namespace": "churn", "pod": "churn-serving-stable-7d9f-abcde", "track": "stable"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float, what: str, log: Path | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - a server still starting answers oddly
            last_error = error
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} ({last_error!r})\n{tail}")


# --------------------------------------------------------------------------- keys and certs


@dataclass
class Keys:
    ca: Path
    cert: Path
    key: Path
    jwt_public: Path
    jwt_private: bytes


def make_keys(folder: Path) -> Keys:
    """A CA, a server certificate for the Service name and 127.0.0.1, and an RS256 key pair."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(private: rsa.RSAPrivateKey) -> bytes:
        return private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, server_key, jwt_key = key(), key(), key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "churn-test-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "churn-serving")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("churn-serving"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    keys = Keys(
        ca=folder / "ca.crt",
        cert=folder / "tls.crt",
        key=folder / "tls.key",
        jwt_public=folder / "public.pem",
        jwt_private=pem(jwt_key),
    )
    keys.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    keys.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    keys.key.write_bytes(pem(server_key))
    keys.jwt_public.write_bytes(
        jwt_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return keys


# --------------------------------------------------------------------------- processes


def config_map_env() -> dict[str, str]:
    """The serving ConfigMap of deploy/k8s/base as environment variables."""
    lines = (K8S_DIR / "base" / "serving.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    handle = log.open("wb")
    try:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    finally:
        handle.close()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def pod_targets(deployment: Path, pod: dict[str, Any], port: int) -> list[dict[str, Any]]:
    """What Kubernetes pod discovery reports for one pod of ``deployment`` (its labels and
    annotations), listening on 127.0.0.1:``port``. The container port is dropped: the
    relabelling must take the port from the annotation."""
    template = yaml.safe_load(deployment.read_text())["spec"]["template"]["metadata"]
    meta = {
        "__meta_kubernetes_namespace": pod["namespace"],
        "__meta_kubernetes_pod_name": pod["pod"],
    }
    for key, value in {**template.get("labels", {}), **pod.get("labels", {})}.items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9]", "_", key)] = value
    for key, value in template["annotations"].items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9]", "_", key)] = value
    meta["__meta_kubernetes_pod_annotation_prometheus_io_port"] = str(port)
    return [{"targets": ["127.0.0.1"], "labels": meta}]


def prometheus_config(
    folder: Path, targets: dict[str, list[dict[str, Any]]], ca: Path | None = None
) -> Path:
    """deploy/prometheus/prometheus.yml for one machine: file discovery, 1 s intervals.

    Each job's Kubernetes discovery becomes a file listing ``targets[job]`` (none when
    absent); relabelling, scheme, path and TLS stay the real ones. Every rule file is loaded
    with its ``for:`` shortened to 1 s.
    """
    config = yaml.safe_load((DEPLOY_DIR / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(
        scrape_interval=SCRAPE, scrape_timeout=SCRAPE, evaluation_interval=SCRAPE
    )
    config.pop("alerting", None)  # no Alertmanager here; firing alerts show in the API
    rule_files = []
    for name in config["rule_files"]:
        rules = (DEPLOY_DIR / "prometheus" / name).read_text()
        rules = re.sub(r"^(\s*)for: \S+$", r"\1for: 1s", rules, flags=re.MULTILINE)
        (folder / name).write_text(rules)
        rule_files.append(str(folder / name))
    config["rule_files"] = rule_files
    for job in config["scrape_configs"]:
        listing = folder / f"{job['job_name']}.targets.json"
        listing.write_text(json.dumps(targets.get(job["job_name"], [])))
        job.pop("kubernetes_sd_configs")
        job["file_sd_configs"] = [{"files": [str(listing)], "refresh_interval": "1s"}]
        if ca is not None and "tls_config" in job:
            job["tls_config"]["ca_file"] = str(ca)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_prometheus(folder: Path, config: Path) -> tuple[subprocess.Popen, str, Path]:
    """Prometheus on a free port of 127.0.0.1; returns the process, its URL and its log."""
    port = free_port()
    log = folder / "prometheus.log"
    server = start(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        log,
    )
    return server, f"http://127.0.0.1:{port}", log


def wait_until_ready(server: subprocess.Popen, url: str, log: Path) -> None:
    def ready() -> bool:
        assert server.poll() is None, "prometheus exited"
        return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200

    wait_for(ready, STARTUP_TIMEOUT_S, "prometheus to be ready", log)


@dataclass
class Stack:
    app_url: str
    prometheus_url: str
    ca: Path
    token: str
    app_log: Path
    prometheus_log: Path
    results: dict[str, Any] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.app_url,
            verify=str(self.ca),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def query(self, expr: str) -> list[dict]:
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10
        )
        response.raise_for_status()
        return response.json()["data"]["result"]

    def alerts(self, name: str, state: str = "firing") -> list[dict]:
        response = httpx.get(f"{self.prometheus_url}/api/v1/alerts", timeout=10)
        response.raise_for_status()
        return [
            alert
            for alert in response.json()["data"]["alerts"]
            if alert["labels"]["alertname"] == name and alert["state"] == state
        ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, demo_bundle: Path) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("e2e")
    keys = make_keys(folder)
    app_port = free_port()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update(config_map_env())
    env.update(
        CHURN_HOST="127.0.0.1",
        CHURN_PORT=str(app_port),
        CHURN_MODEL_DIR=str(demo_bundle),
        CHURN_JWT_KEY_FILE=str(keys.jwt_public),
        CHURN_SSL_CERTFILE=str(keys.cert),
        CHURN_SSL_KEYFILE=str(keys.key),
        CHURN_PREDICTION_LOG_DIR=str(folder / "predictions"),
        CHURN_DRIFT_WINDOW=str(DRIFT_WINDOW),
        CHURN_DRIFT_MIN_SAMPLES=str(DRIFT_WINDOW // 2),
    )
    app_log = folder / "app.log"
    app = start([sys.executable, "-m", "churn_mlops.serving"], app_log, env)
    # The overlays' kustomize labels (the base template has none of its own).
    labels = {"app.kubernetes.io/name": "churn-serving", "churn-mlops/track": POD_LABELS["track"]}
    serving_pod = {**POD_LABELS, "labels": labels}
    targets = pod_targets(K8S_DIR / "base" / "deployment.yaml", serving_pod, app_port)
    config = prometheus_config(folder, {"churn-serving": targets}, keys.ca)
    server, prometheus_url, prometheus_log = start_prometheus(folder, config)
    claims = {
        "sub": "e2e-test",
        "aud": env["CHURN_JWT_AUDIENCE"],
        "iss": env["CHURN_JWT_ISSUER"],
        "scope": "predict",
        "exp": int(time.time()) + 3600,
    }
    token = jwt.encode(claims, keys.jwt_private, algorithm=env["CHURN_JWT_ALGORITHM"])
    result = Stack(
        app_url=f"https://127.0.0.1:{app_port}",
        prometheus_url=prometheus_url,
        ca=keys.ca,
        token=token,
        app_log=app_log,
        prometheus_log=prometheus_log,
    )
    try:

        def app_ready() -> bool:
            assert app.poll() is None, "the app exited"
            with result.client() as client:
                return client.get("/health/ready").status_code == 200

        wait_for(app_ready, STARTUP_TIMEOUT_S, "the app to be ready over TLS", app_log)

        wait_until_ready(server, prometheus_url, prometheus_log)
        yield result
    finally:
        stop(server)
        stop(app)


def rows(n: int, *, seed: int, drifted: bool) -> list[dict[str, Any]]:
    from churn_mlops.release.demo import make_synthetic_features

    frame, _ = make_synthetic_features(n, seed=seed)
    if drifted:
        frame = frame.assign(**{DRIFTED_FEATURE: DRIFTED_VALUE})
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Stack:
    """In-distribution traffic, then a stream with one feature drifted; results recorded."""
    with stack.client() as client:
        for seed in (101, 102):
            batch = rows(DRIFT_WINDOW // 2, seed=seed, drifted=False)
            response = client.post("/v1/predict", json={"rows": batch})
            assert response.status_code == 200, response.text
        # A few answers of other kinds, so every dashboard panel has data.
        assert client.post("/v1/explain", json={"rows": batch[:2]}).status_code == 200
        assert client.post("/v1/predict", json={"rows": [{"age": 30}]}).status_code == 422
        assert client.get("/v1/model", headers={"Authorization": ""}).status_code in {200, 401}

    def psi_scraped() -> list[dict]:
        return stack.query("churn_feature_psi") if stack.query("churn_feature_psi") else []

    before = wait_for(psi_scraped, ALERT_TIMEOUT_S, "PSI of the first window to be scraped")
    stack.results["psi_before"] = {s["metric"]["feature"]: float(s["value"][1]) for s in before}
    time.sleep(3)  # a few evaluations: an in-distribution window must not even go pending
    stack.results["alerts_before"] = stack.alerts("ChurnFeatureDrift", "pending") + stack.alerts(
        "ChurnFeatureDrift"
    )

    with stack.client() as client:
        for seed in (201, 202):
            batch = rows(DRIFT_WINDOW // 2, seed=seed, drifted=True)
            assert client.post("/v1/predict", json={"rows": batch}).status_code == 200
    stack.results["alerts_after"] = wait_for(
        lambda: stack.alerts("ChurnFeatureDrift"),
        ALERT_TIMEOUT_S,
        "ChurnFeatureDrift to fire",
        stack.prometheus_log,
    )
    return stack


def test_prometheus_scrapes_the_app_through_the_kubernetes_relabelling(stack: Stack) -> None:
    up = wait_for(lambda: stack.query('up{job="churn-serving"} == 1'), 30, "the target to be up")
    (target,) = up
    for label, value in POD_LABELS.items():
        assert target["metric"][label] == value
    info = wait_for(lambda: stack.query("churn_model_info"), 30, "churn_model_info")
    assert info[0]["metric"]["model_version"] == "7"
    assert float(stack.query("churn_model_ready")[0]["value"][1]) == 1.0


def test_in_distribution_traffic_raises_no_drift_alert(traffic: Stack) -> None:
    psi = traffic.results["psi_before"]
    assert DRIFTED_FEATURE in psi
    assert max(psi.values()) < 0.2, psi
    assert traffic.results["alerts_before"] == []


def test_drift_alert_fires_for_the_drifted_feature_only(traffic: Stack) -> None:
    firing = traffic.results["alerts_after"]
    assert {alert["labels"]["feature"] for alert in firing} == {DRIFTED_FEATURE}
    (alert,) = firing
    assert alert["labels"]["severity"] == "warning"
    assert float(alert["value"]) > 0.2
    assert DRIFTED_FEATURE in alert["annotations"]["summary"]


def test_request_metrics_carry_the_route_the_alerts_filter_on(traffic: Stack) -> None:
    """Latency, error-rate and no-traffic alerts select route="/v1/predict"."""
    series = traffic.query('sum by (status) (churn_http_requests_total{route="/v1/predict"})')
    by_status = {s["metric"]["status"]: float(s["value"][1]) for s in series}
    assert by_status.get("200", 0) >= 4 and by_status.get("422", 0) >= 1, by_status
    assert traffic.query('churn_http_request_duration_seconds_count{route="/v1/predict"}')
    assert traffic.alerts("ChurnServingNoTraffic") == []
    assert traffic.alerts("ChurnModelNotReady") == []


def test_every_dashboard_query_returns_data(traffic: Stack) -> None:
    """The Grafana panels, run against the real Prometheus after real traffic."""
    dashboard = json.loads((DEPLOY_DIR / "grafana" / "churn-serving.json").read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$namespace", ".*").replace("$__rate_interval", "1m")
            if not traffic.query(expr):
                empty.append(f"{panel['title']}: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)


INGESTION_POD = {"namespace": "churn", "pod": "churn-ingestion-5c8d9f-xk2lp"}


def test_prometheus_scrapes_the_ingestion_consumer_and_loads_its_alerts(tmp_path: Path) -> None:
    """The churn-ingestion job finds the consumer pod through deploy/k8s/ingestion's labels and
    annotations, scrapes the consumer's /metrics server, and its alert rules are loaded."""
    from prometheus_client import start_http_server

    from churn_mlops.ingestion.metrics import IngestionMetrics

    metrics = IngestionMetrics()
    metrics.rows_written.labels(table="events").inc(42)
    port = free_port()
    # What the consumer's CLI starts on metrics_port (churn_mlops.ingestion.cli).
    http, _ = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    targets = pod_targets(K8S_DIR / "ingestion" / "deployment.yaml", INGESTION_POD, port)
    config = prometheus_config(tmp_path, {"churn-ingestion": targets})
    server, url, log = start_prometheus(tmp_path, config)

    def query(expr: str) -> list[dict]:
        response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]["result"]

    try:
        wait_until_ready(server, url, log)
        up = wait_for(lambda: query('up{job="churn-ingestion"} == 1'), 30, "the consumer", log)
        (target,) = up
        for label, value in INGESTION_POD.items():
            assert target["metric"][label] == value
        written = wait_for(
            lambda: query('churn_ingest_rows_written_total{namespace="churn", table="events"}'),
            30,
            "churn_ingest_rows_written_total",
            log,
        )
        assert float(written[0]["value"][1]) == 42.0
        groups = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        loaded = {rule["name"] for group in groups for rule in group["rules"]}
        assert {
            "ChurnIngestionLagHigh",
            "ChurnIngestionStalled",
            "ChurnIngestionDeadLetters",
        } <= loaded
    finally:
        stop(server)
        http.shutdown()

"""A real uvicorn (``python -m churn_mlops.serving``) on 127.0.0.1 over TLS: requests, hot
reload under concurrent load with zero failed requests, logs on disk after shutdown."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import signal
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .conftest import JWT_KEY
from .live_server import free_port, start_serving

pytestmark = pytest.mark.slow

LOAD_THREADS = 6


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its private key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "churn-serving-test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Server:
    """The app in a subprocess, and what a test needs to talk to it."""

    def __init__(self, proc: subprocess.Popen, url: str, cert: Path, log_dir: Path) -> None:
        self.proc = proc
        self.url = url
        self.cert = cert
        self.log_dir = log_dir

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, verify=ssl.create_default_context(cafile=self.cert), timeout=30
        )


@pytest.fixture(scope="module")
def server(xgb_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    cert, key = self_signed_cert(folder)
    port = free_port()
    key_file = folder / "jwt.key"
    key_file.write_text(JWT_KEY + "\n")  # a mounted secret, trailing newline and all
    settings = {
        "CHURN_MODEL_DIR": str(xgb_bundle),
        "CHURN_PORT": str(port),
        "CHURN_SSL_CERTFILE": str(cert),
        "CHURN_SSL_KEYFILE": str(key),
        "CHURN_JWT_KEY_FILE": str(key_file),
        "CHURN_PREDICTION_LOG_DIR": str(folder / "logs"),
        "CHURN_LOG_LEVEL": "warning",
    }
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=cert)
    proc = start_serving(
        settings,
        folder / "server.log",
        lambda: httpx.get(f"{url}/health/ready", verify=trust, timeout=2).status_code == 200,
    )
    server = Server(proc, url, cert, folder / "logs")
    yield server
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_serves_https_only_on_127_0_0_1(server: Server, auth: dict, sample_rows: list[dict]):
    with server.client() as client:
        response = client.post("/v1/predict", json={"rows": sample_rows[:2]}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "1"
        assert client.get("/health/live").status_code == 200
        assert "churn_model_ready 1.0" in client.get("/metrics").text
        assert client.post("/v1/predict", json={"rows": sample_rows[:1]}).status_code == 401
        assert "server" not in response.headers  # no server banner
    plain = server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/health/live", timeout=5)
    with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused by the client
        httpx.get(f"{server.url}/health/live", timeout=5)


def test_hot_reload_under_load_fails_no_request(
    server: Server, lr_bundle: Path, auth: dict, admin_auth: dict, sample_rows: list[dict]
) -> None:
    stop = threading.Event()
    outcomes: list[Counter] = [Counter() for _ in range(LOAD_THREADS)]
    seen: list[list[str]] = [[] for _ in range(LOAD_THREADS)]

    def hammer(i: int) -> None:
        with server.client() as client:
            rows = sample_rows[i : i + 2]
            while not stop.is_set():
                try:
                    response = client.post("/v1/predict", json={"rows": rows}, headers=auth)
                except httpx.HTTPError as exc:
                    outcomes[i][type(exc).__name__] += 1
                    continue
                outcomes[i][response.status_code] += 1
                if response.status_code == 200:
                    version = response.json()["model_version"]
                    if not seen[i] or seen[i][-1] != version:
                        seen[i].append(version)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        with server.client() as admin:
            response = admin.post(
                "/v1/admin/reload", json={"model_dir": str(lr_bundle)}, headers=admin_auth
            )
            assert response.status_code == 202, response.text
            deadline = time.time() + 120
            while admin.get("/v1/admin/reload", headers=admin_auth).json()["state"] == "loading":
                assert time.time() < deadline, "reload did not finish in 120 s"
                time.sleep(0.1)
            status = admin.get("/v1/admin/reload", headers=admin_auth).json()
        time.sleep(1.0)  # keep the load on the new model for a moment
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert status["state"] == "succeeded", status
    total = sum(outcomes, Counter())
    assert set(total) == {200}, f"failed requests during the reload: {dict(total)}"
    assert total[200] > 20
    for versions in seen:
        assert versions == ["1", "2"], versions  # old model, then the new one, never back


def test_logs_are_on_disk_after_a_graceful_shutdown(
    server: Server, auth: dict, sample_rows: list[dict]
) -> None:
    with server.client() as client:
        body = client.post(
            "/v1/predict", json={"rows": [dict(sample_rows[0], customer_id=5)]}, headers=auth
        ).json()
        rid = body["predictions"][0]["request_id"]
        feedback = {"feedback": [{"request_id": rid, "label": 1}]}
        assert client.post("/v1/feedback", json=feedback, headers=auth).status_code == 202
    server.proc.send_signal(signal.SIGTERM)
    # uvicorn drains, runs the lifespan shutdown, then re-raises the signal it caught.
    assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM)
    records = [
        json.loads(line)
        for path in sorted(server.log_dir.glob("predictions-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert records[-1]["request_id"] == rid and records[-1]["customer_id"] == 5
    assert {r["model_version"] for r in records} == {"1", "2"}
    labels = [
        json.loads(line)
        for path in server.log_dir.glob("feedback-*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert labels == [{"label": 1, "timestamp": labels[0]["timestamp"], "request_id": rid}]

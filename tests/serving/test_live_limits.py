"""The app under a real uvicorn (``python -m churn_mlops.serving``): fuzzing, overload, slow
clients and SIGTERM — what an outside audit does to a served bundle.

Needs the ``schemathesis`` CLI of the dev extras (under ``CI`` its absence fails the test).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from .conftest import AUDIENCE, ISSUER, JWT_KEY
from .live_server import free_port, start_serving

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

HEADER_TIMEOUT_S = 2.0
POD_MEMORY_LIMIT = 1 << 30  # deploy/k8s/base/deployment.yaml: limits.memory 1Gi


def token(scope: str = "predict admin") -> str:
    claims = {
        "sub": "audit",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": int(time.time()) + 3600,
        "scope": scope,
    }
    return jwt.encode(claims, JWT_KEY, algorithm="HS256")


class LiveServer:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture(scope="module")
def live(xgb_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("live")
    port = free_port()
    settings = {
        "CHURN_MODEL_DIR": str(xgb_bundle),
        "CHURN_RELOAD_ROOT": str(xgb_bundle.parent),
        "CHURN_PORT": str(port),
        "CHURN_JWT_KEY": JWT_KEY,
        "CHURN_PREDICTION_LOG_DIR": str(folder / "logs"),
        "CHURN_REQUEST_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "CHURN_LOG_LEVEL": "warning",
    }
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    proc = start_serving(
        settings, log, lambda: httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
    )
    server = LiveServer(proc, port, log)
    yield server
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def test_schemathesis_finds_no_server_error_and_no_undocumented_status(
    live: LiveServer, tmp_path: Path
) -> None:
    cli = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(cli).exists():
        if os.environ.get("CI"):
            pytest.fail("the schemathesis CLI (dev extras) is missing")
        pytest.skip("the schemathesis CLI (dev extras) is not installed")
    result = subprocess.run(
        [
            cli,
            "run",
            f"{live.url}/openapi.json",
            "--checks",
            "all",
            "-H",
            f"Authorization: Bearer {token()}",
            "--max-examples",
            "40",
            "--seed",
            "14",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # its example database (.schemathesis/) goes there, not in the checkout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output, output[-6000:]
    assert live.proc.poll() is None
    assert "Traceback" not in live.log.read_text()


def _probe_liveness(url: str, seconds: float) -> subprocess.Popen[str]:
    """Liveness probes from another process (the load generator must not slow the prober)."""
    code = (
        "import http.client, sys, time\n"
        f"end = time.time() + {seconds}\n"
        "while time.time() < end:\n"
        f"    c = http.client.HTTPConnection('127.0.0.1', {url.rsplit(':', 1)[1]}, timeout=5)\n"
        "    t = time.perf_counter(); c.request('GET', '/health/live'); r = c.getresponse()\n"
        "    r.read(); print(r.status, time.perf_counter() - t, flush=True); c.close()\n"
        "    time.sleep(0.05)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_overload_gets_fast_503s_bounded_memory_and_live_probes(
    live: LiveServer, sample_rows: list[dict]
) -> None:
    rows = (sample_rows * 25)[:1000]
    body = json.dumps({"rows": rows}).encode()
    headers = {"Authorization": f"Bearer {token('predict')}", "Content-Type": "application/json"}

    async def one(client: httpx.AsyncClient) -> tuple[int, float, str | None]:
        start = time.perf_counter()
        try:
            response = await client.post("/v1/predict", content=body, headers=headers)
        except httpx.HTTPError as exc:
            return -1, time.perf_counter() - start, type(exc).__name__
        return (
            response.status_code,
            time.perf_counter() - start,
            response.headers.get("retry-after"),
        )

    async def burst() -> list[tuple[int, float, str | None]]:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        async with httpx.AsyncClient(base_url=live.url, limits=limits, timeout=120) as client:
            return await asyncio.gather(*(one(client) for _ in range(256)))

    prober = _probe_liveness(live.url, 20.0)
    time.sleep(1.0)  # a few probes on the idle server first
    started = time.perf_counter()
    answers = asyncio.run(burst())
    elapsed = time.perf_counter() - started
    probes, _ = prober.communicate(timeout=60)
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0 and statuses[200] > 0, statuses
    shed = [(seconds, retry) for status, seconds, retry in answers if status == 503]
    assert all(retry is not None and int(retry) >= 1 for _, retry in shed)
    latencies = [float(line.split()[1]) for line in probes.splitlines() if line.startswith("200")]
    assert len(latencies) >= 20
    p95 = statistics.quantiles(latencies, n=20)[-1]
    peak = live.peak_rss()
    print(  # noqa: T201 - the figures of this run, for the report
        f"overload: {dict(statuses)} in {elapsed:.1f} s; 503 median"
        f" {statistics.median(s for s, _ in shed) * 1000:.0f} ms; liveness p95 {p95 * 1000:.1f} ms"
        f" max {max(latencies) * 1000:.1f} ms over {len(latencies)} probes; peak RSS"
        f" {peak / 2**20:.0f} MiB"
    )
    assert peak < POD_MEMORY_LIMIT
    assert p95 < 0.100, f"liveness p95 {p95 * 1000:.0f} ms under overload"
    # Shed requests are refused before their body is parsed or scored.
    assert statistics.median(s for s, _ in shed) < statistics.median(
        s for status, s, _ in answers if status == 200
    )


def test_slow_clients_are_cut_off(live: LiveServer) -> None:
    # Half-sent headers (slowloris): the connection is closed after the header deadline.
    with socket.create_connection(("127.0.0.1", live.port), timeout=HEADER_TIMEOUT_S * 5) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")
        start = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - start < HEADER_TIMEOUT_S * 4
    # Complete headers, half-sent body: 408 after the deadline.
    with socket.create_connection(("127.0.0.1", live.port), timeout=HEADER_TIMEOUT_S * 5) as sock:
        sock.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + token("predict").encode() + b"\r\n"
            b'Content-Length: 1000\r\n\r\n{"rows": ['
        )
        start = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert time.monotonic() - start < HEADER_TIMEOUT_S * 4
    assert httpx.get(f"{live.url}/health/live", timeout=5).status_code == 200


def test_sigterm_drains_and_exits_with_status_143(live: LiveServer) -> None:
    live.proc.send_signal(signal.SIGTERM)
    code = live.proc.wait(timeout=60)
    # uvicorn finishes, then re-raises the signal: a shell or container runtime reports
    # 128 + 15 = 143 (docs/serving.md); subprocess reports -15.
    assert code == -signal.SIGTERM

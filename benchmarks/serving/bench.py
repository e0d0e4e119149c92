"""Serving benchmark: this app vs ``mlflow models serve`` on the same model, single-row predict.

Run from the project root (takes about two minutes; only 127.0.0.1 is used)::

    .venv/bin/python benchmarks/serving/bench.py
    .venv/bin/python benchmarks/serving/bench.py --bundle dist/churn_model-v3 --duration 10

What it does, with bounded counts and times:

1. builds a demo bundle from synthetic data (or uses ``--bundle``, a demo bundle: the Pipeline
   it was converted from sits next to it), and prints the in-process single-row limit: the
   app's model runtime (the bundle's ONNX graph on onnxruntime, ``LoadedModel.score``'s
   predictor) and ``Pipeline.predict_proba`` on a 1-row DataFrame (mean, p50, p99, calls/s);
2. starts this app (``python -m churn_mlops.serving``, one uvicorn worker, JWT auth on,
   prediction log on) and ``mlflow models serve --env-manager local`` on the same Pipeline
   saved as an MLflow model (``pyfunc_predict_fn="predict_proba"``) in a temporary folder;
3. drives each with a keep-alive HTTP/1.1 client at concurrency 1, 8 and 64 (one process,
   asyncio, requests prebuilt so the client costs as little as possible), for ``--duration``
   seconds per level after a short warm-up, and prints throughput, p50 and p99 latency,
   errors and the ratio of the two servers.

The client shares the machine with the servers, so figures are lower bounds of what a
separate client would see.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
JWT_KEY = "benchmark-secret-key-0123456789abcdef"


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms_per_request: float = float("nan")
    client_cpu_ms_per_request: float = float("nan")

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_cpu_seconds(session_leader: int) -> float:
    """User+system CPU seconds of every process in the server's session (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): session id is field 6, utime/stime fields 14/15.
        if int(fields[3]) == session_leader:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# ---------------------------------------------------------------------------------- in-process


def in_process_limits(bundle: Path, row: dict, calls: int) -> dict[str, dict[str, float]]:
    import pandas as pd

    from churn_mlops.release.demo import load_demo_pipeline
    from churn_mlops.serving.runtime import OnnxPredictor

    pipeline = load_demo_pipeline(bundle)
    onnx = OnnxPredictor(bundle)
    frame = pd.DataFrame([row])
    out = {}
    for name, fn, n in (
        ("ONNX Runtime (the app's predictor)", lambda: onnx.predict_proba([row]), calls),
        ("Pipeline.predict_proba (1-row DataFrame)", lambda: pipeline.predict_proba(frame), 200),
    ):
        for _ in range(20):
            fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        mean = statistics.fmean(times)
        out[name] = {
            "mean_ms": mean * 1e3,
            "p50_ms": percentile(times, 50) * 1e3,
            "p99_ms": percentile(times, 99) * 1e3,
            "per_s": 1.0 / mean,
        }
    return out


# ------------------------------------------------------------------------------------ servers


def wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_app(
    bundle: Path, port: int, log_dir: Path, extra_env: dict[str, str]
) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        {
            "CHURN_MODEL_DIR": str(bundle),
            "CHURN_HOST": HOST,
            "CHURN_PORT": str(port),
            "CHURN_JWT_KEY": JWT_KEY,
            "CHURN_PREDICTION_LOG_DIR": str(log_dir),
            "CHURN_LOG_LEVEL": "warning",
            "CHURN_DOCS_ENABLED": "false",
            **extra_env,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "churn_mlops.serving"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_APP_STDERR") else subprocess.DEVNULL,
        start_new_session=True,  # its own session, so its CPU time can be read apart
    )
    wait_http(f"http://{HOST}:{port}/health/ready", proc, 120)
    return proc


def save_mlflow_model(bundle: Path, example: object, path: Path) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from churn_mlops.release.demo import load_demo_pipeline

    pipeline = load_demo_pipeline(bundle)
    signature = infer_signature(example, pipeline.predict_proba(example))
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        signature=signature,
        pyfunc_predict_fn="predict_proba",
        # MLflow 3 defaults to skops, which refuses XGBoost types unless listed as trusted.
        skops_trusted_types=["xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"],
    )


def start_mlflow(model_path: Path, port: int) -> subprocess.Popen:
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    # mlflow execs `uvicorn` by name: put this interpreter's bin folder first on PATH.
    path = os.pathsep.join([str(mlflow_cli.parent), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path)
    proc = subprocess.Popen(
        [
            str(mlflow_cli),
            "models",
            "serve",
            "-m",
            str(model_path),
            "--env-manager",
            "local",
            "-p",
            str(port),
            "-h",
            HOST,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # mlflow starts uvicorn as a child: stop the whole group
    )
    wait_http(f"http://{HOST}:{port}/ping", proc, 180)
    return proc


def stop(proc: subprocess.Popen, group: bool = False) -> None:
    if proc.poll() is not None:
        return
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------- load test


def build_request(path: str, body: bytes, port: int, token: str | None) -> bytes:
    headers = [
        f"POST {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


class _KeepAliveClient(asyncio.Protocol):
    """One keep-alive connection that sends the same request again as soon as it is answered.

    A bare protocol (no streams, no per-request objects) so the load generator spends as
    little CPU as possible on the cores it shares with the server.
    """

    def __init__(self, request: bytes, run: _Run) -> None:
        self.request = request
        self.run = run
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        run = self.run
        if run.budget <= 0 or time.perf_counter() >= run.stop_at:
            self.transport.close()  # type: ignore[union-attr]
            return
        run.budget -= 1
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            i = head.find(b"content-length:")
            if i < 0:
                raise RuntimeError("response without Content-Length")
            j = head.find(b"\r\n", i)
            length = int(head[i + 15 : j if j >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            run = self.run
            run.latencies.append(time.perf_counter() - self.sent_at)
            if head[9:12] != b"200":
                run.errors += 1
            if run.sample is None:
                run.sample = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class _Run:
    stop_at: float
    budget: int
    latencies: list[float]
    errors: int = 0
    sample: bytes | None = None
    seconds: float = 0.0


async def drive(
    port: int, request: bytes, concurrency: int, duration: float, max_requests: int
) -> _Run:
    """Keep ``concurrency`` connections busy for ``duration`` s (at most ``max_requests``)."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    run = _Run(stop_at=t0 + duration, budget=max_requests, latencies=[])
    clients = []
    for _ in range(concurrency):
        _, client = await loop.create_connection(lambda: _KeepAliveClient(request, run), HOST, port)
        clients.append(client)
    await asyncio.gather(*(c.closed for c in clients))
    run.seconds = time.perf_counter() - t0
    return run


@dataclass
class Target:
    """A server under test and the request it gets."""

    name: str
    proc: subprocess.Popen
    port: int
    request: bytes
    sample: bytes | None = None


def run_levels(
    targets: list[Target],
    levels: list[int],
    duration: float,
    warmup: float,
    rounds: int,
    max_requests: int,
) -> dict[str, list[LoadResult]]:
    """Measure every target at every level, alternating targets in ``rounds`` short rounds.

    The machine is shared, so its load drifts over minutes; alternating A, B, A, B, ... gives
    both servers the same conditions, and each figure pools all rounds of its level.
    """
    results: dict[str, list[LoadResult]] = {t.name: [] for t in targets}
    for c in levels:
        pooled = {t.name: (_Run(0.0, 0, []), [0.0, 0.0]) for t in targets}
        for target in targets:
            asyncio.run(drive(target.port, target.request, c, warmup, max_requests))
        for _ in range(rounds):
            for target in targets:
                cpu0, own0 = server_cpu_seconds(target.proc.pid), time.process_time()
                run = asyncio.run(
                    drive(target.port, target.request, c, duration / rounds, max_requests)
                )
                total, cpu = pooled[target.name]
                cpu[0] += server_cpu_seconds(target.proc.pid) - cpu0
                cpu[1] += time.process_time() - own0
                total.latencies += run.latencies
                total.errors += run.errors
                total.seconds += run.seconds
                target.sample = target.sample or run.sample
        for target in targets:
            total, (server_cpu, client_cpu) = pooled[target.name]
            n = len(total.latencies)
            result = LoadResult(
                concurrency=c,
                requests=n,
                errors=total.errors,
                seconds=total.seconds,
                p50_ms=percentile(total.latencies, 50) * 1e3,
                p99_ms=percentile(total.latencies, 99) * 1e3,
                server_cpu_ms_per_request=server_cpu / n * 1e3 if n else float("nan"),
                client_cpu_ms_per_request=client_cpu / n * 1e3 if n else float("nan"),
            )
            results[target.name].append(result)
            print(
                f"  {target.name:<20} c={c:<3} {result.throughput:8.1f} req/s"
                f"  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
                f"  CPU/req: server {result.server_cpu_ms_per_request:6.3f} ms,"
                f" client {result.client_cpu_ms_per_request:5.3f} ms"
                f"  ({n} requests, {result.errors} errors)",
                flush=True,
            )
    return results


def mint_token() -> str:
    import jwt

    return jwt.encode(
        {
            "exp": int(time.time()) + 3600,
            "aud": "churn-serving",
            "iss": "churn-mlops",
            "scope": "predict",
            "sub": "benchmark",
        },
        JWT_KEY,
        algorithm="HS256",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle folder (default: a demo bundle)")
    parser.add_argument(
        "--estimator", default="xgboost", choices=["xgboost", "logistic_regression"]
    )
    parser.add_argument(
        "--duration", type=float, default=6.0, help="measured seconds per server and level"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds the duration is split into"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per level")
    parser.add_argument("--levels", default="1,8,64", help="concurrency levels")
    parser.add_argument("--max-requests", type=int, default=50_000, help="cap per level")
    parser.add_argument("--in-process-calls", type=int, default=3000)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument(
        "--app-env",
        action="append",
        default=[],
        metavar="CHURN_X=VALUE",
        help="extra environment for this app (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    from churn_mlops.release.demo import make_demo_bundle, make_synthetic_features

    work = Path(tempfile.mkdtemp(prefix="churn-serving-bench-"))
    procs: list[tuple[subprocess.Popen, bool]] = []
    try:
        bundle = args.bundle or make_demo_bundle(work / "bundle", estimator=args.estimator)
        frame, _ = make_synthetic_features(1, seed=7)
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
        print(f"bundle: {bundle}")
        print(
            f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]},"
            f" load average {os.getloadavg()[0]:.1f}"
        )

        print("\nin-process single-row limit")
        limits = in_process_limits(Path(bundle), row, args.in_process_calls)
        for name, f in limits.items():
            print(
                f"  {name:<42} mean {f['mean_ms']:7.3f} ms  p50 {f['p50_ms']:7.3f} ms"
                f"  p99 {f['p99_ms']:7.3f} ms  -> {f['per_s']:9.0f} rows/s"
            )

        print("\nHTTP single-row predict (servers measured in alternating rounds)")
        app_port = free_port()
        extra_env = dict(kv.split("=", 1) for kv in args.app_env)
        app = start_app(Path(bundle), app_port, work / "prediction_logs", extra_env)
        procs.append((app, False))
        body = json.dumps({"rows": [row]}).encode()
        targets = [
            Target(
                "this app",
                app,
                app_port,
                build_request("/v1/predict", body, app_port, mint_token()),
            )
        ]
        if not args.skip_mlflow:
            model_path = work / "mlflow_model"
            save_mlflow_model(Path(bundle), frame, model_path)
            ml_port = free_port()
            ml = start_mlflow(model_path, ml_port)
            procs.append((ml, True))
            ml_body = json.dumps({"dataframe_records": [row]}).encode()
            targets.append(
                Target(
                    "mlflow models serve",
                    ml,
                    ml_port,
                    build_request("/invocations", ml_body, ml_port, None),
                )
            )
        results = run_levels(
            targets, levels, args.duration, args.warmup, args.rounds, args.max_requests
        )
        ours = results["this app"]
        theirs = results.get("mlflow models serve", [])

        if targets[0].sample is not None:
            ours_p = json.loads(targets[0].sample)["predictions"][0]["probability"]
            print(f"\nsame row, this app: p = {ours_p:.9f}", end="")
            if len(targets) > 1 and targets[1].sample is not None:
                preds = json.loads(targets[1].sample)["predictions"]
                print(f"; mlflow: p = {preds[0][1] if isinstance(preds[0], list) else preds[0]}")
            else:
                print()

        if theirs:
            print(
                "\n| concurrency | this app req/s | p50 ms | p99 ms | mlflow req/s | p50 ms |"
                " p99 ms | throughput ratio | server CPU/request ratio |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for a, b in zip(ours, theirs, strict=True):
                ratio = a.throughput / b.throughput if b.throughput else float("inf")
                cpu_ratio = b.server_cpu_ms_per_request / a.server_cpu_ms_per_request
                print(
                    f"| {a.concurrency} | {a.throughput:.0f} | {a.p50_ms:.2f} | {a.p99_ms:.2f}"
                    f" | {b.throughput:.1f} | {b.p50_ms:.1f} | {b.p99_ms:.1f} | {ratio:.1f}x"
                    f" | {cpu_ratio:.0f}x |"
                )
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(
                json.dumps(
                    {
                        "in_process": limits,
                        "this_app": [vars(r) | {"throughput": r.throughput} for r in ours],
                        "mlflow": [vars(r) | {"throughput": r.throughput} for r in theirs],
                    },
                    indent=2,
                )
            )
        return 0
    finally:
        for proc, group in procs:
            stop(proc, group)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

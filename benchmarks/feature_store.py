"""Feature store benchmark: scoring by customer id vs by features, and batch scoring at scale.

Run from the project root (only 127.0.0.1 is used; needs ``redis-server`` on the PATH for the
Redis figures)::

    .venv/bin/python benchmarks/feature_store.py                       # all parts
    .venv/bin/python benchmarks/feature_store.py --customers 200000 --duration 6

Part 1 — online. Builds a demo bundle (XGBoost, 200 trees) and a Feast repository over a
synthetic ``model_input_table`` (``--online-customers`` customers), materialized once into
SQLite and once into a real ``redis-server``. Prints the in-process ``online_features`` lookup
(p50/p99) of each store, then starts the serving app twice (``python -m churn_mlops.serving``:
one with the SQLite repository, one with Redis) and drives, at concurrency 1 and 64 with the
keep-alive load generator of ``benchmarks/serving/bench.py``:
``POST /v1/customers/predict`` (one id) on each store, and ``POST /v1/predict`` (the same
customer's features in the body) — throughput, p50, p99 and the ratio to the vector endpoint.

Part 2 — batch. ``--customers`` synthetic customers (default 1,000,000) at one snapshot,
scored two ways, each in its own process so peak memory (max RSS) is its own:
``batch_scoring`` as the pipeline runs it (Feast ``get_historical_features`` from the DuckDB
offline store, champion scores, expected value, top-3 SHAP reasons, ranking) and
``mlflow.pyfunc`` batch prediction of the same Pipeline (``predict_proba``) on the features
already in memory (no lookup, no reasons). Prints seconds and peak MiB of each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving.bench import (  # noqa: E402
    HOST,
    Target,
    build_request,
    free_port,
    mint_token,
    percentile,
    run_levels,
    save_mlflow_model,
    start_app,
    stop,
)
from churn_mlops.release.demo import (  # noqa: E402
    load_demo_pipeline,
    make_demo_bundle,
    make_synthetic_features,
)

BUSINESS = {"retained_customer_value": 500.0, "offer_cost": 40.0, "offer_success_rate": 0.3}


def synthetic_table(n_customers: int, snapshot: str = "2024-06-01", seed: int = 0) -> pd.DataFrame:
    """One snapshot of ``n_customers`` contract rows with keys and a label."""
    features, label = make_synthetic_features(n_customers, seed=seed)
    keys = pd.DataFrame(
        {
            "customer_id": np.arange(1, n_customers + 1, dtype=np.int64),
            "snapshot_date": pd.Timestamp(snapshot),
            "churned": label,
        }
    )
    return pd.concat([keys, features], axis=1)


def build_repo(root: Path, table: pd.DataFrame, fs_yaml: str):
    from tests.feature_store.support import build_repository

    return build_repository(root, table, fs_yaml_file=fs_yaml)


def start_redis() -> tuple[subprocess.Popen, str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server not found: Redis figures skipped")
        return None
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc, f"{HOST}:{port}"


def lookup_latency(repository, ids: list[int], calls: int) -> str:
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        repository.online_features([ids[i % len(ids)]])
        times.append(time.perf_counter() - t0)
    return f"p50 {percentile(times, 50) * 1e3:.2f} ms  p99 {percentile(times, 99) * 1e3:.2f} ms"


def online_part(args: argparse.Namespace, work: Path) -> None:
    print(f"== online: {args.online_customers} customers, c = 1 and 64, {args.duration} s each")
    bundle = make_demo_bundle(work / "bundle", n_rows=3000, model_version="1")
    table = synthetic_table(args.online_customers, snapshot=pd.Timestamp.now().strftime("%Y-%m-01"))
    sqlite_root = work / "sqlite"
    repo = build_repo(sqlite_root, table, "feature_store.yaml")
    print("  in-process online_features, SQLite:", lookup_latency(repo, [42, 7, 99], 2000))
    redis = start_redis()
    procs = []
    try:
        targets = []
        token = mint_token()
        logs = work / "logs"
        port = free_port()
        app = start_app(
            bundle, port, logs, {"CHURN_FEATURE_REPO": str(sqlite_root / "feature_repo")}
        )
        procs.append(app)
        ids = json.dumps({"customer_ids": [42]}).encode()
        row = {
            k: (v.item() if hasattr(v, "item") else v)
            for k, v in table.iloc[41].drop(["customer_id", "snapshot_date", "churned"]).items()
        }
        rows = json.dumps({"rows": [row]}).encode()
        targets.append(
            Target(
                "by id (SQLite)",
                app,
                port,
                build_request("/v1/customers/predict", ids, port, token),
            )
        )
        targets.append(
            Target("vector /v1/predict", app, port, build_request("/v1/predict", rows, port, token))
        )
        if redis is not None:
            os.environ["REDIS_CONNECTION_STRING"] = redis[1]
            redis_root = work / "redis"
            rrepo = build_repo(redis_root, table, "feature_store.redis.yaml")
            print("  in-process online_features, Redis: ", lookup_latency(rrepo, [42, 7, 99], 2000))
            rport = free_port()
            rapp = start_app(
                bundle,
                rport,
                logs,
                {
                    "CHURN_FEATURE_REPO": str(redis_root / "feature_repo"),
                    "CHURN_FEATURE_STORE_YAML": "feature_store.redis.yaml",
                    "REDIS_CONNECTION_STRING": redis[1],
                },
            )
            procs.append(rapp)
            targets.insert(
                1,
                Target(
                    "by id (Redis)",
                    rapp,
                    rport,
                    build_request("/v1/customers/predict", ids, rport, token),
                ),
            )
        results = run_levels(targets, [1, 64], args.duration, 1.0, args.rounds, 10**7)
        vector = results["vector /v1/predict"]
        for name, levels in results.items():
            for res, ref in zip(levels, vector, strict=True):
                print(
                    f"  {name:<20} c={res.concurrency:<3}"
                    f" throughput x{res.throughput / ref.throughput:.2f}"
                    f" of the vector endpoint; p99 {res.p99_ms:.2f} ms"
                )
    finally:
        for proc in procs:
            stop(proc, group=True)
        if redis is not None:
            redis[0].terminate()


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would carry the parent's peak
    over fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch_product(folder: str) -> None:
    """Child: the batch_scoring nodes as the pipeline runs them."""
    import joblib

    from churn_mlops.feature_store.repository import FeatureRepository
    from churn_mlops.pipelines.batch_scoring import nodes
    from tests.feature_store.support import store_config

    root = Path(folder)
    pipeline = joblib.load(root / "model.joblib")
    spine = pd.read_parquet(root / "spine.parquet")
    config = store_config()
    t0 = time.perf_counter()
    repository = FeatureRepository(root / "repo" / "feature_repo")
    features = nodes.fetch_scoring_features(repository, spine, config)
    t1 = time.perf_counter()
    champion = {"version": "1", "model": pipeline, "model_metadata": {"threshold": 0.3}}
    ranked = nodes.score_customers(features, champion, BUSINESS, {"top_reasons": 3}, config)
    t2 = time.perf_counter()
    peak = peak_mib()
    print(
        json.dumps(
            {
                "seconds": t2 - t0,
                "lookup_s": t1 - t0,
                "score_explain_rank_s": t2 - t1,
                "rows": len(ranked),
                "peak_mib": peak,
            }
        )
    )


def _batch_pyfunc(folder: str) -> None:
    """Child: mlflow.pyfunc batch prediction of the same Pipeline on in-memory features."""
    import mlflow.pyfunc

    root = Path(folder)
    model = mlflow.pyfunc.load_model(str(root / "mlflow_model"))
    features = pd.read_parquet(root / "features.parquet")
    t0 = time.perf_counter()
    scores = model.predict(features)
    t1 = time.perf_counter()
    peak = peak_mib()
    print(json.dumps({"seconds": t1 - t0, "rows": len(scores), "peak_mib": peak}))


def batch_part(args: argparse.Namespace, work: Path) -> None:
    import joblib

    n = args.customers
    print(f"== batch: {n:,} customers")
    bundle = make_demo_bundle(work / "batch_bundle", n_rows=5000, model_version="1")
    table = synthetic_table(n, seed=3)
    started = time.perf_counter()
    build_repo(work / "batch" / "repo", table, "feature_store.yaml")
    # What `kedro run --pipeline feature_store` does; batch scoring itself reads the offline store.
    print(
        f"  set-up: register + materialize {n:,} customers into SQLite: "
        f"{time.perf_counter() - started:.0f} s (this process's peak so far {peak_mib():.0f} MiB)"
    )
    joblib.dump(load_demo_pipeline(bundle), work / "batch" / "model.joblib")
    table[["customer_id", "snapshot_date"]].to_parquet(work / "batch" / "spine.parquet")
    features = table.drop(columns=["customer_id", "snapshot_date", "churned"])
    features.to_parquet(work / "batch" / "features.parquet")
    save_mlflow_model(bundle, features.head(5), work / "batch" / "mlflow_model")
    del table
    for name, fn in (
        ("batch_scoring (Feast + score + SHAP top 3 + rank)", "_batch_product"),
        ("mlflow.pyfunc predict (in-memory features)", "_batch_pyfunc"),
    ):
        out = subprocess.run(
            [sys.executable, __file__, "--child", fn, str(work / "batch")],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]
                ),
            },
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  {name:<52} {result['seconds']:8.1f} s  peak {result['peak_mib']:8.0f} MiB  {result}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--online-customers", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        globals()[args.child[0]](args.child[1])
        return 0
    with tempfile.TemporaryDirectory(prefix="churn-fs-bench-") as folder:
        work = Path(folder)
        if not args.skip_online:
            online_part(args, work)
        if not args.skip_batch:
            batch_part(args, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

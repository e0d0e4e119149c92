"""Cost of the consumer's online push step (churn_mlops.ingestion.online_push) per batch.

A landing area holds 90 days of events of N customers (Parquet per event date, written by the
product's ``Landing``) and their sign-ups; a Feast repository (copy of ``feature_repo/``,
SQLite online store) is registered over a synthetic ``model_input_table`` and materialized.
Then ``OnlinePush.refresh`` runs on batches whose events touch k customers: read the landed
history of those customers, prepare and clean it as data_processing does, compute the window
features as of the batch's newest event and push them to the online store. No Kafka here: the
consumer's own figures are in benchmarks/README.md; this is what the push adds per batch.

    python benchmarks/online_push.py                      # 20,000 customers, 600k events
    python benchmarks/online_push.py --customers 5000 --batches 100,1000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "src"))

from churn_mlops.feature_store.definitions import build_feature_definitions  # noqa: E402
from churn_mlops.feature_store.repository import FeatureRepository  # noqa: E402
from churn_mlops.ingestion.cli import load_project_config  # noqa: E402
from churn_mlops.ingestion.landing import Landing, OffsetRange  # noqa: E402
from churn_mlops.ingestion.online_push import online_push_from_parameters  # noqa: E402

END = pd.Timestamp("2024-06-01")
KINDS = np.array(["session", "support_ticket", "payment", "online_purchase"])


def events(ids: np.ndarray, per_customer: int, days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(ids) * per_customer
    kind = KINDS[rng.integers(0, len(KINDS), n)]
    session = kind == "session"
    value = np.round(rng.gamma(2.0, 10.0, n), 2)
    seconds = rng.integers(0, days * 86400, n)
    return pd.DataFrame(
        {
            "customer_id": np.repeat(ids, per_customer).astype("int64"),
            "event_time": END - pd.to_timedelta(seconds, unit="s"),
            "event_type": kind,
            "amount": np.where(session, np.nan, value),
            "duration_minutes": np.where(session, value, np.nan),
        }
    ).sort_values("event_time", ignore_index=True)


def customers(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "signup_date": END - pd.to_timedelta(rng.integers(200, 900, n), unit="D"),
            "age": rng.integers(18, 80, n).astype("int64"),
            "region": "north",
            "plan": "basic",
            "contract": "one_year",
            "payment_method": "credit_card",
            "paperless_billing": True,
            "monthly_fee": 29.5,
        }
    )


def model_input(n: int, names: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "snapshot_date": pd.Timestamp(END.replace(day=1)),
            "churned": 0,
        }
    )
    for name in names:
        frame[name] = pd.Series(["basic"] * n if dtypes[name] == "str" else [1] * n).astype(
            "object" if dtypes[name] == "str" else dtypes[name]
        )
    return frame


def land(landing: Landing, table: str, frame: pd.DataFrame, column: str, first: int) -> int:
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    landing.write_rows(table, OffsetRange(table, 0, first, first + len(frame) - 1), rows, column)
    return first + len(frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events-per-customer", type=int, default=30)
    parser.add_argument("--batches", default="10,100,1000,10000", help="customers per batch")
    args = parser.parse_args(argv)
    settings, params, loader = load_project_config(PROJECT_ROOT, "streaming")
    parameters = loader["parameters"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copytree(PROJECT_ROOT / "feature_repo", root / "feature_repo")
        (root / "data" / "04_feature").mkdir(parents=True)
        settings = settings.model_copy(
            update={"landing_dir": root / "landing", "feature_repo_path": root / "feature_repo"}
        )
        push = online_push_from_parameters(parameters, settings, params, PROJECT_ROOT)
        text = {"region", "plan", "contract", "payment_method"}
        dtypes = {n: "str" if n in text else "int64" for n in push.store.feature_names}
        dtypes |= {n: "float64" for n in ("monthly_fee", "session_minutes_30d", "usage_trend")}
        dtypes |= {"online_spend_90d": "float64"}
        table = model_input(args.customers, push.store.feature_names, dtypes)
        source = root / "model_input_table.parquet"
        table.to_parquet(source)
        repository = FeatureRepository(root / "feature_repo", offline_source=source)
        repository.apply(build_feature_definitions(push.store, table.dtypes.to_dict(), str(source)))
        repository.materialize(END - pd.Timedelta(days=60), END)
        ids = np.arange(1, args.customers + 1)
        history = events(ids, args.events_per_customer, 90, seed=2)
        landing = push.landing
        offset = land(landing, "customers", customers(args.customers), "signup_date", 0)
        offset = land(landing, "events", history, "event_time", offset)
        print(f"landed {len(history):,} events of {args.customers:,} customers over 90 days")
        print("| customers in the batch | push (recompute + write) | per customer |")
        print("|---:|---:|---:|")
        for k in (int(x) for x in args.batches.split(",")):
            batch = events(ids[:k], 1, 1, seed=k).assign(event_time=END + pd.Timedelta(hours=k))
            offset = land(landing, "events", batch, "event_time", offset)
            started = time.perf_counter()
            pushed = push.refresh([pa.Table.from_pandas(batch, preserve_index=False)])
            seconds = time.perf_counter() - started
            assert pushed == k, (pushed, k)
            print(f"| {k:,} | {seconds:.2f} s | {seconds / k * 1000:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

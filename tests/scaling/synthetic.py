"""Primary tables of any size for scale tests, written in chunks (memory stays flat).

The tables follow docs/data_model.md: one customer per 100 events over 2023-2024, a third of
them churning, events only while a customer is active. Timestamps are microseconds and the
events file has DuckDB's row groups (122,880 rows), as data_processing writes them.
benchmarks/scale.py draws its data with this module too (seed 7; the tests use 11).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = np.datetime64("2023-01-01T00:00:00", "us")
END = np.datetime64("2025-01-01T00:00:00", "us")
EVENTS_PER_CUSTOMER = 100
EVENT_TYPES = ["session", "support_ticket", "payment", "late_payment", "online_purchase"]
EVENT_SHARES = [0.74, 0.02, 0.13, 0.01, 0.10]
ROW_GROUP = 122_880
CHUNK = 1_000_000
CATEGORIES = {
    "region": ["north", "south", "east", "west", "central"],
    "plan": ["basic", "standard", "premium"],
    "contract": ["month_to_month", "one_year", "two_year"],
    "payment_method": ["credit_card", "bank_transfer", "electronic_check", "mailed_check"],
}


def _strings(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    codes = pa.array(rng.integers(0, len(values), n).astype("int32"))
    return pa.DictionaryArray.from_arrays(codes, pa.array(values)).cast(pa.string())


def write_primary_tables(n_events: int, out_dir: Path, *, seed: int = 11) -> dict[str, Path]:
    """Write ``customers_primary``, ``churn_records_primary`` and ``events_primary`` Parquet.

    Returns:
        The path of each table, by name.
    """
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.parquet" for name in
             ("customers_primary", "churn_records_primary", "events_primary")}  # fmt: skip
    n_customers = max(n_events // EVENTS_PER_CUSTOMER, 10)
    day = np.timedelta64(1, "D")
    period_days = int((END - START) / day)
    offset = np.where(
        rng.random(n_customers) < 0.6,
        -rng.integers(1, 1500, n_customers),
        rng.integers(0, period_days - 1, n_customers),
    )
    signup = START + offset * day
    active_from = np.maximum(signup, START)
    remaining = ((END - active_from) / day).astype("int64")
    churn_date = active_from + rng.integers(1, np.maximum(remaining, 2)) * day
    churns = (rng.random(n_customers) < 0.35) & (churn_date < END)
    active_to = np.where(churns, churn_date, END)
    span_us = ((active_to - active_from) / np.timedelta64(1, "us")).astype("float64")

    ids = np.arange(1, n_customers + 1, dtype="int64")
    customers = {
        "customer_id": ids,
        "signup_date": signup,
        "age": rng.integers(18, 80, n_customers),
        **{name: _strings(rng, values, n_customers) for name, values in CATEGORIES.items()},
        "paperless_billing": rng.random(n_customers) < 0.6,
        "monthly_fee": np.round(rng.choice([29.99, 59.99, 99.99], n_customers), 2),
    }
    ordered = ["customer_id", "signup_date", "age", "region", "plan", "contract",
               "payment_method", "paperless_billing", "monthly_fee"]  # fmt: skip
    pq.write_table(pa.table({k: customers[k] for k in ordered}), paths["customers_primary"])
    pq.write_table(
        pa.table({"customer_id": ids[churns], "churn_date": churn_date[churns]}),
        paths["churn_records_primary"],
    )

    weights = span_us / span_us.sum()
    writer: pq.ParquetWriter | None = None
    for start in range(0, n_events, CHUNK):
        n = min(CHUNK, n_events - start)
        who = rng.choice(n_customers, n, p=weights)
        when = active_from[who] + (rng.random(n) * span_us[who]).astype("int64").astype(
            "timedelta64[us]"
        )
        kind = rng.choice(len(EVENT_TYPES), n, p=EVENT_SHARES)
        value = np.round(rng.lognormal(3.0, 0.6, n), 2)
        table = pa.table(
            {
                "customer_id": ids[who],
                "event_time": when,
                "event_type": pa.DictionaryArray.from_arrays(
                    pa.array(kind.astype("int32")), pa.array(EVENT_TYPES)
                ).cast(pa.string()),
                "amount": pa.array(np.where(kind <= 1, np.nan, value), from_pandas=True),
                "duration_minutes": pa.array(np.where(kind == 0, value, np.nan), from_pandas=True),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(paths["events_primary"], table.schema)
        writer.write_table(table, row_group_size=ROW_GROUP)
    assert writer is not None
    writer.close()
    return paths


def in_memory_bytes(path: Path) -> int:
    """Size of a Parquet file's data decoded into Arrow columns (read a row group at a time)."""
    parquet = pq.ParquetFile(path)
    return sum(parquet.read_row_group(i).nbytes for i in range(parquet.num_row_groups))

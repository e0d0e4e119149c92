"""MonthPartitionedParquetDataset on DuckDB: one folder per month, the contract's columns on load.

The PySpark side (Spark writing and reading the same layout) is in tests/spark/.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import pandas as pd
import pytest
from kedro.io import DatasetError

from churn_mlops.datasets.partitioned_parquet import MonthPartitionedParquetDataset

DUCKDB = {"backend": "duckdb", "database": ":memory:"}


def make_dataset(path: Path, **kwargs) -> MonthPartitionedParquetDataset:
    return MonthPartitionedParquetDataset(
        str(path),
        time_column="event_time",
        partition_column="event_month",
        table_name="events",
        connection=DUCKDB,
        **kwargs,
    )


def events(times: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": range(1, len(times) + 1),
            "event_time": pd.to_datetime(times).astype("datetime64[us]"),
            "amount": [float(i) for i in range(len(times))],
        }
    )


def test_save_writes_one_folder_per_month_and_load_returns_the_table(tmp_path: Path):
    dataset = make_dataset(tmp_path / "events")
    frame = events(["2023-01-31 23:59:59", "2023-02-01 00:00:00", "2023-02-28 12:00:00"])
    dataset.save(ibis.memtable(frame))

    folders = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert folders == ["event_month=2023-01", "event_month=2023-02"]
    loaded = dataset.load()
    assert loaded.columns == tuple(frame.columns)
    result = loaded.execute().sort_values("customer_id").reset_index(drop=True)
    result["event_time"] = result["event_time"].astype("datetime64[us]")
    pd.testing.assert_frame_equal(result, frame, check_dtype=False)


def test_save_replaces_every_previous_partition(tmp_path: Path):
    dataset = make_dataset(tmp_path / "events")
    dataset.save(ibis.memtable(events(["2023-01-05", "2023-03-05"])))
    dataset.save(ibis.memtable(events(["2023-02-05"])))

    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == ["event_month=2023-02"]
    assert dataset.load().count().execute() == 1


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"customer_id": [1]}), r"time column 'event_time' is missing"),
        (
            events(["2023-01-05"]).assign(event_month="x"),
            r"partition column 'event_month' already exists",
        ),
    ],
)
def test_save_names_the_column_problem(tmp_path: Path, frame: pd.DataFrame, message: str):
    with pytest.raises(DatasetError, match=message):
        make_dataset(tmp_path / "events").save(ibis.memtable(frame))
    assert not (tmp_path / "events").exists()


def test_only_parquet_and_known_backends_are_accepted(tmp_path: Path):
    with pytest.raises(DatasetError, match=r"writes Parquet only"):
        make_dataset(tmp_path / "events", file_format="csv")
    polars = MonthPartitionedParquetDataset(
        str(tmp_path / "events"), time_column="event_time", connection={"backend": "polars"}
    )
    with pytest.raises(DatasetError, match=r"backend 'polars' is not supported"):
        polars.load()

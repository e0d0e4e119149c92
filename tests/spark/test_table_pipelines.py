"""The table pipelines on PySpark (``--env spark``) give the DuckDB default's tables, row for row.

One small simulated dataset is written once (by the simulation pipeline in the spark
environment, so its timestamps are Spark-readable); the default environment builds primary
tables and features from it on DuckDB, and the spark environment builds them on Spark.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as pads
import pytest

from churn_mlops.fingerprint import fingerprint_table
from tests.conftest import make_project_copy

pytestmark = pytest.mark.spark

SMALL_SIMULATION = {
    "simulation": {
        "n_months": 12,
        "scenario": {"start_month": 6},
        "population": {"initial_customers": 200, "monthly_signups": 15},
    }
}
RAW = ("customers", "events", "churn_records")
KEYS = {
    "customers_primary": ["customer_id"],
    "churn_records_primary": ["customer_id"],
    "events_primary": ["customer_id", "event_time", "event_type"],
    "model_input_table": ["customer_id", "snapshot_date"],
}


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet file or a (hive-partitioned) folder written by DuckDB or Spark, as pandas."""
    if path.is_dir():
        return pads.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    return pd.read_parquet(path)


def assert_same_rows(duckdb: pd.DataFrame, spark: pd.DataFrame, keys: list[str]) -> None:
    """Same columns and, sorted by ``keys`` then every column, the same values to the bit (keys
    need not be unique: events of one customer may share a timestamp), hence the same content
    fingerprint (docs/experiment_tracking.md)."""
    assert list(spark.columns) == list(duckdb.columns)
    assert len(spark) == len(duckdb) > 0
    order = [*keys, *[c for c in duckdb.columns if c not in keys]]
    a = duckdb.sort_values(order).reset_index(drop=True)
    b = spark.sort_values(order).reset_index(drop=True)
    for frame in (a, b):
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = frame[column].astype("datetime64[ns]")
    pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=True)
    assert fingerprint_table(spark) == fingerprint_table(duckdb)


@pytest.fixture(scope="module")
def raw_data(
    tmp_path_factory: pytest.TempPathFactory,
    spark: Any,
    kedro_session_run: Callable[..., dict[str, Any]],
) -> Path:
    """Raw tables of a small simulation, written in the spark environment."""
    project = make_project_copy(tmp_path_factory.mktemp("raw") / "project")
    kedro_session_run(project, "simulation", env="spark", params=SMALL_SIMULATION)
    raw = project / "data" / "01_raw"
    # Spark's cost here is per job, but keep the data small: the overrides must have applied.
    assert pads.dataset(raw / "events.parquet").count_rows() < 100_000
    return raw


@pytest.fixture(scope="module")
def duckdb_project(
    tmp_path_factory: pytest.TempPathFactory,
    raw_data: Path,
    kedro_session_run: Callable[..., dict[str, Any]],
) -> Path:
    """The default environment's primary tables and features (DuckDB) from ``raw_data``."""
    project = make_project_copy(tmp_path_factory.mktemp("duckdb") / "project")
    for name in RAW:
        shutil.copy2(raw_data / f"{name}.parquet", project / "data" / "01_raw")
    kedro_session_run(project, "data_processing", "feature_engineering")
    return project


@pytest.fixture(scope="module")
def spark_project(
    tmp_path_factory: pytest.TempPathFactory,
    raw_data: Path,
    kedro_session_run: Callable[..., dict[str, Any]],
) -> Path:
    """``kedro run --env spark`` of data_processing then feature_engineering on ``raw_data``."""
    project = make_project_copy(tmp_path_factory.mktemp("spark") / "project")
    for name in RAW:
        shutil.copy2(raw_data / f"{name}.parquet", project / "data" / "01_raw")
    kedro_session_run(project, "data_processing", "feature_engineering", env="spark")
    return project


@pytest.mark.parametrize(
    ("table", "duckdb_path", "spark_path"),
    [
        ("customers_primary", "customers_primary.parquet", "customers_primary"),
        ("churn_records_primary", "churn_records_primary.parquet", "churn_records_primary"),
        ("events_primary", "events_primary.parquet", "events_primary"),
    ],
)
def test_data_processing_on_spark_matches_duckdb(
    duckdb_project: Path, spark_project: Path, table: str, duckdb_path: str, spark_path: str
):
    """``kedro run --env spark --pipeline data_processing`` writes the DuckDB primary tables."""
    duckdb_table = read_table(duckdb_project / "data" / "03_primary" / duckdb_path)
    spark_table = read_table(spark_project / "data" / "03_primary" / spark_path)
    if table == "events_primary":
        # One folder per month of event_time; the partition column is not part of the table.
        folders = sorted(
            p.name
            for p in (spark_project / "data" / "03_primary" / spark_path).iterdir()
            if p.is_dir()
        )
        months = sorted(duckdb_table["event_time"].dt.strftime("%Y-%m").unique())
        assert folders == [f"event_month={m}" for m in months]
        spark_table = spark_table.drop(columns="event_month")[list(duckdb_table.columns)]
    assert_same_rows(duckdb_table, spark_table, KEYS[table])


def test_feature_engineering_on_spark_matches_duckdb(duckdb_project: Path, spark_project: Path):
    """``kedro run --env spark --pipeline feature_engineering`` == the DuckDB model_input_table."""
    output = spark_project / "data" / "05_model_input" / "model_input_table"
    assert output.is_dir(), "Spark writes model_input_table as a folder of part files"
    spark_table = read_table(output)
    duckdb_table = read_table(
        duckdb_project / "data" / "05_model_input" / "model_input_table.parquet"
    )
    assert spark_table["snapshot_date"].nunique() >= 3
    assert spark_table["churned"].sum() > 0
    assert_same_rows(duckdb_table, spark_table, KEYS["model_input_table"])


def test_duckdb_reads_the_month_partitioned_events_that_spark_wrote(
    duckdb_project: Path, spark_project: Path
):
    """The partitioned layout is engine-neutral: DuckDB loads Spark's folder as the table."""
    from churn_mlops.datasets.partitioned_parquet import MonthPartitionedParquetDataset

    dataset = MonthPartitionedParquetDataset(
        str(spark_project / "data" / "03_primary" / "events_primary"),
        time_column="event_time",
        partition_column="event_month",
        connection={"backend": "duckdb", "database": ":memory:"},
    )
    loaded = dataset.load().to_pandas()
    expected = read_table(duckdb_project / "data" / "03_primary" / "events_primary.parquet")
    assert_same_rows(expected, loaded[list(expected.columns)], KEYS["events_primary"])
    assert "event_month" not in loaded.columns

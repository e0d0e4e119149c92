"""Small raw tables that follow docs/data_model.md, and the data_processing parameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml

from churn_mlops.pipelines.data_processing.nodes import parse_data_processing_parameters
from churn_mlops.pipelines.data_processing.schema import DataProcessingParams

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMETERS_FILE = PROJECT_ROOT / "conf" / "base" / "parameters_data_processing.yml"

Frames = dict[str, pd.DataFrame]


def valid_frames() -> Frames:
    """Six customers, twelve events and two churn records that pass every rule."""
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, 7, dtype="int64"),
            "signup_date": pd.to_datetime(
                ["2022-06-01", "2023-01-01", "2023-02-15", "2023-05-01", "2023-07-10", "2024-01-02"]
            ),
            "age": np.array([23, 35, 47, 52, 61, 30], dtype="int64"),
            "region": ["north", "south", "east", "west", "central", "north"],
            "plan": ["basic", "standard", "premium", "basic", "standard", "premium"],
            "contract": [
                "month_to_month",
                "one_year",
                "two_year",
                "month_to_month",
                "one_year",
                "two_year",
            ],
            "payment_method": [
                "credit_card",
                "bank_transfer",
                "electronic_check",
                "mailed_check",
                "credit_card",
                "bank_transfer",
            ],
            "paperless_billing": [True, False, True, True, False, True],
            "monthly_fee": [19.5, 45.0, 89.99, 19.5, 45.0, 120.0],
        }
    )
    events = pd.DataFrame(
        {
            "customer_id": np.array([1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 6], dtype="int64"),
            "event_time": pd.to_datetime(
                [
                    "2023-01-03 10:00",
                    "2023-01-20 18:30",
                    "2023-02-01 09:00",
                    "2023-02-11 12:00",
                    "2023-03-01 08:15",
                    "2023-03-05 20:00",
                    "2023-04-01 00:00",
                    "2023-05-06 07:45",
                    "2023-06-01 10:00",
                    "2023-08-15 16:20",
                    "2024-01-05 11:11",
                    "2024-02-01 09:30",
                ]
            ),
            "event_type": [
                "session",
                "support_ticket",
                "payment",
                "session",
                "late_payment",
                "online_purchase",
                "payment",
                "session",
                "payment",
                "session",
                "session",
                "payment",
            ],
            "amount": [
                np.nan,
                np.nan,
                19.5,
                np.nan,
                45.0,
                12.3,
                89.99,
                np.nan,
                19.5,
                np.nan,
                np.nan,
                120.0,
            ],
            "duration_minutes": [
                12.0,
                np.nan,
                np.nan,
                3.5,
                np.nan,
                np.nan,
                np.nan,
                40.0,
                np.nan,
                7.0,
                15.0,
                np.nan,
            ],
        }
    )
    churn_records = pd.DataFrame(
        {
            "customer_id": np.array([2, 4], dtype="int64"),
            "churn_date": pd.to_datetime(["2023-09-01", "2024-03-15"]),
        }
    )
    return {"customers": customers, "events": events, "churn_records": churn_records}


def as_ibis(frames: Frames) -> dict[str, ibis.Table]:
    """The frames as Ibis memtables (run on the default DuckDB backend)."""
    return {name: ibis.memtable(frame) for name, frame in frames.items()}


def write_raw(project_dir: Path, frames: Frames) -> None:
    """Write the frames where the catalog's raw entries read them (data/01_raw/*.parquet)."""
    raw = project_dir / "data" / "01_raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(raw / f"{name}.parquet", index=False)


@pytest.fixture
def frames() -> Frames:
    """Fresh valid raw tables (pandas), safe to mutate in a test."""
    return valid_frames()


@pytest.fixture
def dp_parameters() -> dict:
    """``data_processing`` parameters as in conf/base (a fresh dict, safe to mutate)."""
    return yaml.safe_load(PARAMETERS_FILE.read_text())["data_processing"]


@pytest.fixture
def config(dp_parameters: dict) -> DataProcessingParams:
    """The parsed conf/base parameters."""
    return parse_data_processing_parameters(dp_parameters)


@pytest.fixture
def write_raw_tables() -> Callable[[Path, Frames], None]:
    """Write raw tables into a project folder's data/01_raw."""
    return write_raw

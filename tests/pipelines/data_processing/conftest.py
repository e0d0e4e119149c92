"""Small raw tables that follow docs/data_model.md, and the data_processing parameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from churn_mlops import settings
from churn_mlops.pipelines.data_processing.nodes import parse_data_processing_parameters
from churn_mlops.pipelines.data_processing.params import DataProcessingParams

PROJECT_ROOT = Path(__file__).resolve().parents[3]

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


def load_parameters(env: str = "local") -> dict:
    """The project's parameters as Kedro resolves them for ``env`` (base + env)."""
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(PROJECT_ROOT / "conf"), env=env, **settings.CONFIG_LOADER_ARGS
    )
    return loader["parameters"]


@pytest.fixture
def dp_parameters() -> dict:
    """``data_processing`` parameters as Kedro resolves them (a fresh dict, safe to mutate)."""
    return load_parameters()["data_processing"]


@pytest.fixture
def config(dp_parameters: dict) -> DataProcessingParams:
    """The parsed conf/base parameters."""
    return parse_data_processing_parameters(dp_parameters)


@pytest.fixture
def write_raw_tables() -> Callable[[Path, Frames], None]:
    """Write raw tables into a project folder's data/01_raw."""
    return write_raw


TELCO_FILE_NAME = "WA_Fn-UseC_-Telco-Customer-Churn.csv"


def telco_like_frame(rows: int = 40, seed: int = 7) -> pd.DataFrame:
    """A table with the exact columns and value vocabularies of the IBM Telco churn CSV.

    The real file (7043 rows) cannot be downloaded here; this one reproduces its shape,
    including text ids, Yes/No flags and the blank ``TotalCharges`` of zero-tenure customers.
    """
    rng = np.random.default_rng(seed)
    letters = list("ABCDEFGHJKLMNPQRSTUVWXYZ")

    def pick(values: list[str]) -> np.ndarray:
        return rng.choice(values, rows)

    tenure = rng.integers(0, 73, rows)
    tenure[:2] = 0
    monthly = np.round(rng.uniform(18.25, 118.75, rows), 2)
    total = np.where(tenure == 0, " ", np.round(monthly * tenure, 2).astype(str))
    return pd.DataFrame(
        {
            "customerID": [
                f"{rng.integers(1000, 9999)}-{''.join(rng.choice(letters, 5))}" for _ in range(rows)
            ],
            "gender": pick(["Female", "Male"]),
            "SeniorCitizen": rng.integers(0, 2, rows),
            "Partner": pick(["Yes", "No"]),
            "Dependents": pick(["Yes", "No"]),
            "tenure": tenure,
            "PhoneService": pick(["Yes", "No"]),
            "MultipleLines": pick(["Yes", "No", "No phone service"]),
            "InternetService": pick(["DSL", "Fiber optic", "No"]),
            "OnlineSecurity": pick(["Yes", "No", "No internet service"]),
            "OnlineBackup": pick(["Yes", "No", "No internet service"]),
            "DeviceProtection": pick(["Yes", "No", "No internet service"]),
            "TechSupport": pick(["Yes", "No", "No internet service"]),
            "StreamingTV": pick(["Yes", "No", "No internet service"]),
            "StreamingMovies": pick(["Yes", "No", "No internet service"]),
            "Contract": pick(["Month-to-month", "One year", "Two year"]),
            "PaperlessBilling": pick(["Yes", "No"]),
            "PaymentMethod": pick(
                [
                    "Electronic check",
                    "Mailed check",
                    "Bank transfer (automatic)",
                    "Credit card (automatic)",
                ]
            ),
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "Churn": pick(["Yes", "No"]),
        }
    )

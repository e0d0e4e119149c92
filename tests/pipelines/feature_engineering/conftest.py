"""Builders of tiny hand-made primary tables and the feature parameters for these tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest
import yaml

from churn_mlops.pipelines.feature_engineering.params import FeatureEngineeringConfig

PROJECT_ROOT = Path(__file__).resolve().parents[3]

CUSTOMER_SCHEMA = ibis.schema(
    {
        "customer_id": "int64",
        "signup_date": "timestamp",
        "age": "int64",
        "region": "string",
        "plan": "string",
        "contract": "string",
        "payment_method": "string",
        "paperless_billing": "boolean",
        "monthly_fee": "float64",
    }
)
EVENT_SCHEMA = ibis.schema(
    {
        "customer_id": "int64",
        "event_time": "timestamp",
        "event_type": "string",
        "amount": "float64",
        "duration_minutes": "float64",
    }
)
CHURN_SCHEMA = ibis.schema({"customer_id": "int64", "churn_date": "timestamp"})


def feature_parameters() -> dict[str, Any]:
    """The ``feature_engineering`` parameters exactly as committed in conf/base."""
    path = PROJECT_ROOT / "conf" / "base" / "parameters_feature_engineering.yml"
    return yaml.safe_load(path.read_text())["feature_engineering"]


def make_config(**snapshots: Any) -> FeatureEngineeringConfig:
    """The committed parameters with ``snapshots`` keys overridden."""
    params = feature_parameters()
    params["snapshots"] = {**params["snapshots"], **snapshots}
    return FeatureEngineeringConfig.model_validate(params)


def customers_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Customers with defaults for every column a row does not give."""
    defaults = {
        "signup_date": "2022-01-01",
        "age": 30,
        "region": "north",
        "plan": "basic",
        "contract": "month_to_month",
        "payment_method": "credit_card",
        "paperless_billing": True,
        "monthly_fee": 29.99,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows], columns=CUSTOMER_SCHEMA.names)
    frame["signup_date"] = pd.to_datetime(frame["signup_date"])
    return frame


def events_frame(rows: list[tuple[int, str, str, float | None]]) -> pd.DataFrame:
    """Events from (customer_id, event_time, event_type, value) tuples.

    ``value`` goes to ``duration_minutes`` for sessions and to ``amount`` otherwise.
    """
    records = []
    for customer_id, when, event_type, value in rows:
        is_session = event_type == "session"
        records.append(
            {
                "customer_id": customer_id,
                "event_time": pd.Timestamp(when),
                "event_type": event_type,
                "amount": None if is_session else value,
                "duration_minutes": value if is_session else None,
            }
        )
    frame = pd.DataFrame(records, columns=EVENT_SCHEMA.names)
    frame["event_time"] = pd.to_datetime(frame["event_time"])
    return frame.astype({"amount": "float64", "duration_minutes": "float64"})


def churn_frame(rows: list[tuple[int, str]]) -> pd.DataFrame:
    """Churn records from (customer_id, churn_date) tuples."""
    frame = pd.DataFrame(rows, columns=CHURN_SCHEMA.names)
    frame["churn_date"] = pd.to_datetime(frame["churn_date"])
    return frame.astype({"customer_id": "int64"})


def as_table(frame: pd.DataFrame, schema: ibis.Schema) -> ir.Table:
    """An Ibis memtable with an explicit schema (so that empty tables keep their types)."""
    return ibis.memtable(frame, schema=schema)


@pytest.fixture
def config_factory() -> Callable[..., FeatureEngineeringConfig]:
    """Build the committed feature configuration with some ``snapshots`` keys overridden."""
    return make_config

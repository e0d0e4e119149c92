"""Fixtures of the monitoring tests: small synthetic feature tables and a champion on them."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tests.pipelines.monitoring.support import synthetic_table, train_champion

HISTORY = ["2023-06-01", "2023-07-01", "2023-08-01", "2023-09-01", "2023-10-01", "2023-11-01"]


@pytest.fixture(scope="session")
def reference_table() -> pd.DataFrame:
    """Six months of synthetic snapshots: the champion trains on the first five."""
    return synthetic_table(HISTORY, 600, seed=1)


@pytest.fixture(scope="session")
def synthetic_champion(reference_table: pd.DataFrame) -> dict[str, Any]:
    """A champion (model, metadata, profile) trained before 2023-11 on synthetic data."""
    return train_champion(reference_table, train_end="2023-11-01", test_month="2023-11-01")


def with_window(reference: pd.DataFrame, **changes: Any) -> pd.DataFrame:
    """The reference months plus one new month (2023-12) generated with ``changes``."""
    window = synthetic_table(["2023-12-01"], 1500, seed=2, **changes)
    window["customer_id"] += 10_000_000
    return pd.concat([reference, window], ignore_index=True)

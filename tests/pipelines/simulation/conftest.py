"""Fixtures for the simulation tests: the configured parameters and small simulated tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from churn_mlops.pipelines.simulation import merge_parameters, simulate

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PARAMETERS_FILE = PROJECT_ROOT / "conf" / "base" / "parameters_simulation.yml"

# Small enough to run in well under a second, large enough for scenario effects to show.
SMALL = {
    "n_months": 12,
    "population": {"initial_customers": 900, "monthly_signups": 50},
    "scenario": {"start_month": 6},
}


@pytest.fixture(scope="session")
def base_parameters() -> dict[str, Any]:
    """The ``simulation`` block exactly as configured in conf/base."""
    with PARAMETERS_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)["simulation"]


@pytest.fixture(scope="session")
def small_parameters(base_parameters: dict[str, Any]) -> dict[str, Any]:
    """Configured parameters shrunk to 1,500 customers over 12 months (scenario from month 6)."""
    return merge_parameters(base_parameters, SMALL)


@pytest.fixture(scope="session")
def simulate_small(
    small_parameters: dict[str, Any],
) -> Callable[..., dict[str, pd.DataFrame]]:
    """Simulate the small setup with overrides; results are cached per override set."""
    cache: dict[str, dict[str, pd.DataFrame]] = {}

    def _simulate(**overrides: Any) -> dict[str, pd.DataFrame]:
        key = repr(sorted(overrides.items()))
        if key not in cache:
            cache[key] = simulate(merge_parameters(small_parameters, overrides))
        # Copies, so a test that modifies a frame cannot leak into another test.
        return {name: frame.copy() for name, frame in cache[key].items()}

    return _simulate


@pytest.fixture(scope="session")
def small_tables(simulate_small: Callable[..., dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The small baseline simulation."""
    return simulate_small()

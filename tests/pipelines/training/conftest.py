"""Fixtures for training tests: a synthetic model input table, its split and fitted candidates.

Fitting is done once per test session (module fixtures would refit for every file) because the
evaluation tests reuse the same candidates.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from churn_mlops.pipelines.training import nodes
from tests.pipelines.training.synthetic import (
    feature_list,
    make_model_input_table,
    training_params,
)


@pytest.fixture(scope="session")
def features() -> list[dict[str, Any]]:
    """The synthetic feature contract list."""
    return feature_list()


@pytest.fixture(scope="session")
def params() -> dict[str, Any]:
    """Quick training parameters."""
    return training_params()


@pytest.fixture(scope="session")
def model_input_table() -> pd.DataFrame:
    """500 customers x 10 monthly snapshots."""
    return make_model_input_table()


@pytest.fixture(scope="session")
def splits(model_input_table, features, params):
    """``(train, validation, test, summary)`` of the synthetic table."""
    return nodes.split_by_snapshot_month(model_input_table, features, params)


@pytest.fixture(scope="session")
def baseline_model(splits, features, params):
    """Fitted logistic-regression baseline."""
    return nodes.fit_logistic_regression(splits[0], features, params)


@pytest.fixture(scope="session")
def xgboost_search(splits, features, params):
    """Result and history of a two-trial XGBoost search."""
    return nodes.tune_xgboost(splits[0], splits[1], features, params)


@pytest.fixture(scope="session")
def xgboost_model(splits, xgboost_search, features, params):
    """Fitted XGBoost candidate."""
    return nodes.fit_xgboost(splits[0], xgboost_search[0], features, params)

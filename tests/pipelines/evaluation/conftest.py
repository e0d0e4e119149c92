"""Fixtures for evaluation tests: the training fixtures plus test-split predictions."""

from __future__ import annotations

from typing import Any

import pytest

from churn_mlops.pipelines.evaluation import nodes
from tests.pipelines.training.conftest import (  # noqa: F401 - re-exported fixtures
    baseline_model,
    features,
    model_input_table,
    params,
    splits,
    xgboost_model,
    xgboost_search,
)
from tests.pipelines.training.synthetic import evaluation_params


@pytest.fixture(scope="session")
def eval_params() -> dict[str, Any]:
    """Small evaluation parameters."""
    return evaluation_params()


@pytest.fixture(scope="session")
def validation_predictions(xgboost_model, splits, features, params):
    """XGBoost scores on the validation split."""
    return nodes.predict_churn_scores(xgboost_model, splits[1], features, params)


@pytest.fixture(scope="session")
def test_predictions(xgboost_model, splits, features, params):
    """XGBoost scores on the test split."""
    return nodes.predict_churn_scores(xgboost_model, splits[2], features, params)


@pytest.fixture(scope="session")
def decision_threshold(validation_predictions, eval_params, params):
    """The business threshold chosen on validation."""
    return nodes.choose_decision_threshold(validation_predictions, eval_params, params)

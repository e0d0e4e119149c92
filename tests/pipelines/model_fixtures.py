"""Model fixtures shared by the training and evaluation tests (imported by their conftests).

A synthetic model input table, its time split, fitted candidates and test-split predictions,
built once per test session.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from churn_mlops.pipelines.evaluation import nodes as evaluation_nodes
from churn_mlops.pipelines.training import nodes
from tests.pipelines.training.synthetic import (
    evaluation_params,
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
def cfg(params):
    """Validated quick training parameters."""
    return nodes.validate_training_parameters(params, feature_list())[0]


@pytest.fixture(scope="session")
def specs(features):
    """Validated feature list."""
    return nodes.validate_training_parameters(training_params(), features)[1]


@pytest.fixture(scope="session")
def model_input_table() -> pd.DataFrame:
    """500 customers x 10 monthly snapshots."""
    return make_model_input_table()


@pytest.fixture(scope="session")
def splits(model_input_table, specs, cfg):
    """``(train, validation, test, summary)`` of the synthetic table."""
    return nodes.split_by_snapshot_month(model_input_table, specs, cfg)


@pytest.fixture(scope="session")
def baseline_model(splits, specs, cfg):
    """Fitted logistic-regression baseline."""
    return nodes.fit_logistic_regression(splits[0], specs, cfg)


@pytest.fixture(scope="session")
def xgboost_search(splits, specs, cfg):
    """Result and history of a two-trial XGBoost search."""
    return nodes.tune_xgboost(splits[0], splits[1], specs, cfg)


@pytest.fixture(scope="session")
def xgboost_model(splits, xgboost_search, specs, cfg):
    """Fitted XGBoost candidate."""
    return nodes.fit_xgboost(splits[0], xgboost_search[0], specs, cfg)


@pytest.fixture(scope="session")
def eval_params() -> dict[str, Any]:
    """Small evaluation parameters."""
    return evaluation_params()


@pytest.fixture(scope="session")
def setup(eval_params, params, features):
    """Validated evaluation setup."""
    return evaluation_nodes.validate_evaluation_parameters(eval_params, params, features)


@pytest.fixture(scope="session")
def validation_predictions(xgboost_model, splits, setup):
    """XGBoost scores on the validation split."""
    return evaluation_nodes.predict_churn_scores(xgboost_model, splits[1], setup)


@pytest.fixture(scope="session")
def test_predictions(xgboost_model, splits, setup):
    """XGBoost scores on the test split."""
    return evaluation_nodes.predict_churn_scores(xgboost_model, splits[2], setup)


@pytest.fixture(scope="session")
def decision_threshold(validation_predictions, setup):
    """The business threshold chosen on validation."""
    return evaluation_nodes.choose_decision_threshold(validation_predictions, setup)

"""Fixtures for evaluation tests (defined in ``tests/pipelines/model_fixtures.py``)."""

from __future__ import annotations

from tests.mlflow_store import mlflow_store, model_name  # noqa: F401 - fixtures
from tests.pipelines.model_fixtures import (  # noqa: F401 - fixtures
    baseline_model,
    cfg,
    decision_threshold,
    eval_params,
    features,
    model_input_table,
    params,
    setup,
    specs,
    splits,
    test_predictions,
    validation_predictions,
    xgboost_model,
    xgboost_search,
)

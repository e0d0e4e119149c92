"""Fixtures for training tests (defined in ``tests/pipelines/model_fixtures.py``)."""

from __future__ import annotations

from tests.pipelines.model_fixtures import (  # noqa: F401 - fixtures
    baseline_model,
    cfg,
    features,
    model_input_table,
    params,
    specs,
    splits,
    xgboost_model,
    xgboost_search,
)

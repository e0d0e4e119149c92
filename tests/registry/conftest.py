"""Fixtures for the registry helpers and the ``kedro models`` commands: a real MLflow store."""

from __future__ import annotations

from tests.mlflow_store import mlflow_store, model_name  # noqa: F401 - re-exported fixtures

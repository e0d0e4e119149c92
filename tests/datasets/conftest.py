"""Fixtures for the project datasets: a real MLflow store and a small fitted model."""

from __future__ import annotations

from tests.mlflow_store import mlflow_store, model_name, small_model  # noqa: F401 - fixtures

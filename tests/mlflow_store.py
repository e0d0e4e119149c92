"""A real MLflow tracking store and model registry (SQLite) in a temporary folder, for tests.

Import the fixtures into a test module or conftest: ``from tests.mlflow_store import ...``.
One store serves the whole session (creating the SQLite schema takes seconds); tests keep
apart by using their own registered model names (``model_name`` fixture).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest

_names = itertools.count()


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Point MLflow (env var and fluent API) at a fresh SQLite store; yields the URI."""
    import mlflow

    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("tests", artifact_location=str(folder / "artifacts"))
    mlflow.set_experiment(experiment_id=experiment)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture
def model_name(mlflow_store: str) -> str:
    """A registered model name no other test uses."""
    return f"churn_test_{next(_names)}"


@pytest.fixture(scope="session")
def small_model() -> tuple[Any, Any]:
    """A fitted served-shape logistic-regression ``Pipeline`` and its test feature rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from churn_mlops.contracts.features import parse_feature_list
    from churn_mlops.pipelines.training.nodes import build_preprocessor
    from tests.pipelines.training.synthetic import feature_list, make_model_input_table

    table = make_model_input_table(n_customers=200, n_months=4, seed=3)
    specs = parse_feature_list(feature_list())
    names = [s.name for s in specs]
    model = Pipeline(
        [("preprocess", build_preprocessor(specs)), ("model", LogisticRegression(max_iter=300))]
    ).fit(table[names], table.churned)
    return model, table[names]

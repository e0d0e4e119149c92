"""Fixtures for the serving tests: demo bundles, settings, tokens and a started app."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from churn_mlops.release.demo import make_demo_bundle, make_synthetic_features
from churn_mlops.serving.app import create_app
from churn_mlops.serving.settings import ServingSettings

JWT_KEY = "test-secret-key-for-serving-tests-0123456789"
AUDIENCE = "churn-serving"
ISSUER = "churn-mlops"


@pytest.fixture(scope="session")
def xgb_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo bundle with an XGBoost Pipeline (version 1)."""
    return make_demo_bundle(
        tmp_path_factory.mktemp("bundles") / "xgb-v1",
        n_rows=1500,
        model_version="1",
        n_estimators=120,
    )


@pytest.fixture(scope="session")
def lr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo bundle with a logistic-regression Pipeline (version 2)."""
    return make_demo_bundle(
        tmp_path_factory.mktemp("bundles") / "lr-v2",
        estimator="logistic_regression",
        n_rows=1500,
        model_version="2",
        seed=1,
    )


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, Any]]:
    """Feature rows following the contract, as JSON-ready dictionaries."""
    frame, _ = make_synthetic_features(40, seed=11)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@pytest.fixture
def make_token() -> Callable[..., str]:
    """Mint an HS256 token; keyword arguments override or drop (value None) claims."""

    def _make(*, key: str = JWT_KEY, algorithm: str = "HS256", **claims: Any) -> str:
        payload: dict[str, Any] = {
            "sub": "tester",
            "aud": AUDIENCE,
            "iss": ISSUER,
            "exp": int(time.time()) + 600,
            "scope": "predict",
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key, algorithm=algorithm)

    return _make


@pytest.fixture
def auth(make_token: Callable[..., str]) -> dict[str, str]:
    """Headers with a valid predict-scope token."""
    return {"Authorization": f"Bearer {make_token()}"}


@pytest.fixture
def admin_auth(make_token: Callable[..., str]) -> dict[str, str]:
    """Headers with a valid token holding both scopes."""
    return {"Authorization": f"Bearer {make_token(scope='predict admin')}"}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., ServingSettings]:
    """Settings for a bundle, logging into the test's temporary folder."""

    def _make(bundle: Path, **overrides: Any) -> ServingSettings:
        values: dict[str, Any] = {
            "model_dir": bundle,
            "jwt_key": JWT_KEY,
            "prediction_log_dir": tmp_path / "logs",
            "drift_min_samples": 20,
        }
        values.update(overrides)
        return ServingSettings(**values)

    return _make


@pytest.fixture
def client(xgb_bundle: Path, make_settings: Callable[..., ServingSettings]) -> Iterator[TestClient]:
    """A started app (lifespan run) serving the XGBoost bundle."""
    with TestClient(create_app(make_settings(xgb_bundle))) as test_client:
        yield test_client

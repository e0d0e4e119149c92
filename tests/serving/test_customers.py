"""``POST /v1/customers/predict`` and ``/explain``: features by id from a real Feast online store.

Parity: for the same customer and date, the offline store (point-in-time), the online store
through this route and ``/v1/predict`` with the features in the body give the same probability.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn_mlops.serving.app import create_app
from churn_mlops.serving.settings import ServingSettings
from tests.feature_store.support import build_repository, redis_env, redis_server  # noqa: F401
from tests.pipelines.training.synthetic import make_model_input_table

FEATURES = [
    "tenure_days", "age", "monthly_fee", "paperless_billing", "region", "plan", "contract",
    "payment_method", "sessions_30d", "sessions_90d", "session_minutes_30d", "usage_trend",
    "days_since_last_session", "support_tickets_30d", "support_tickets_90d",
    "late_payments_90d", "payments_90d", "online_purchases_90d", "online_spend_90d",
]  # fmt: skip


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """80 customers x 4 monthly snapshots (latest 2023-07-01)."""
    return make_model_input_table(n_customers=80, n_months=4, seed=5)


@pytest.fixture(params=["feature_store.yaml", "feature_store.redis.yaml"])
def store_yaml(request: pytest.FixtureRequest) -> str:
    """SQLite (default) and Redis (a real redis-server) online stores."""
    if "redis" in request.param:
        request.getfixturevalue("redis_env")
    return request.param


@pytest.fixture
def repo_root(tmp_path: Path, table: pd.DataFrame, store_yaml: str) -> Path:
    """A registered, materialized feature repository over ``table``."""
    build_repository(tmp_path / "project", table, fs_yaml_file=store_yaml)
    return tmp_path / "project"


@pytest.fixture
def customers_settings(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    repo_root: Path,
    store_yaml: str,
) -> Callable[..., ServingSettings]:
    """Settings of the XGBoost demo bundle with the feature repository configured."""

    def settings(feature_max_age_s: float = 365 * 86400.0) -> ServingSettings:
        return make_settings(
            xgb_bundle,
            feature_repo=repo_root / "feature_repo",
            feature_store_yaml=store_yaml,
            feature_max_age_s=feature_max_age_s,
        )

    return settings


@pytest.fixture
def customers_client(customers_settings: Callable[..., ServingSettings]) -> Iterator[TestClient]:
    """The app serving the XGBoost demo bundle with the feature repository configured."""
    with TestClient(create_app(customers_settings())) as client:
        yield client


def _latest(table: pd.DataFrame, cid: int) -> dict[str, Any]:
    row = table[(table.customer_id == cid)].sort_values("snapshot_date").iloc[-1]
    return {
        name: (row[name].item() if hasattr(row[name], "item") else row[name]) for name in FEATURES
    }


def test_scores_known_customers_and_reports_unknown_ones_per_row(
    customers_client: TestClient, auth: dict[str, str], table: pd.DataFrame, store_yaml: str
):
    response = customers_client.post(
        "/v1/customers/predict", json={"customer_ids": [3, 424242, 4]}, headers=auth
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["online_store"] == ("redis" if "redis" in store_yaml else "sqlite")
    found, missing, other = body["results"]
    assert [r["customer_id"] for r in body["results"]] == [3, 424242, 4]
    assert missing == {
        "customer_id": 424242, "status": "not_found", "request_id": None, "probability": None,
        "label": None, "model_version": "1", "freshness": None,
    }  # fmt: skip
    for result in (found, other):
        assert result["status"] == "found"
        assert 0.0 < result["probability"] < 1.0
        assert result["label"] == int(result["probability"] >= body["threshold"])
        assert result["model_version"] == "1"
    latest = pd.Timestamp(table.snapshot_date.max()).tz_localize("UTC")
    assert pd.Timestamp(found["freshness"]["feature_timestamp"]) == latest
    age = (datetime.now(timezone.utc) - latest).total_seconds()
    assert found["freshness"]["feature_age_s"] == pytest.approx(age, abs=60)


def test_offline_online_and_vector_endpoint_agree(
    customers_client: TestClient, auth: dict[str, str], table: pd.DataFrame, repo_root: Path
):
    from churn_mlops.feature_store.repository import FeatureRepository

    ids = [1, 2, 17, 60]
    latest = table.snapshot_date.max()
    by_id = customers_client.post(
        "/v1/customers/predict", json={"customer_ids": ids}, headers=auth
    ).json()["results"]
    rows = [_latest(table, cid) for cid in ids]
    by_vector = customers_client.post("/v1/predict", json={"rows": rows}, headers=auth).json()
    offline = FeatureRepository(
        repo_root / "feature_repo", offline_source=repo_root / "unused"
    ).historical_features(
        pd.DataFrame({"customer_id": ids, "snapshot_date": [latest] * len(ids)}),
        timestamp_field="snapshot_date",
    )
    offline_rows = [
        {n: (v.item() if hasattr(v, "item") else v) for n, v in r.items()}
        for r in offline[FEATURES].to_dict(orient="records")
    ]
    assert offline_rows == rows
    by_offline = customers_client.post(
        "/v1/predict", json={"rows": offline_rows}, headers=auth
    ).json()

    for online, vector, off in zip(
        by_id, by_vector["predictions"], by_offline["predictions"], strict=True
    ):
        assert online["probability"] == vector["probability"] == off["probability"]
        assert online["label"] == vector["label"]


def test_stale_features_are_flagged_and_counted(
    customers_settings: Callable[..., ServingSettings], auth: dict[str, str]
):
    # the synthetic snapshots are from 2023: all stale
    settings = customers_settings(feature_max_age_s=86400.0)
    with TestClient(create_app(settings)) as client:
        body = client.post(
            "/v1/customers/predict", json={"customer_ids": [1, 2, 999999]}, headers=auth
        ).json()
        metrics = client.get("/metrics").text

    assert [r["freshness"]["stale"] for r in body["results"][:2]] == [True, True]
    assert 'churn_customer_lookups_total{result="stale"} 2.0' in metrics
    assert 'churn_customer_lookups_total{result="found"} 2.0' in metrics
    assert 'churn_customer_lookups_total{result="not_found"} 1.0' in metrics
    assert "churn_feature_age_seconds_count 2.0" in metrics


def test_explain_by_customer_matches_explain_by_features(
    customers_client: TestClient, auth: dict[str, str], table: pd.DataFrame
):
    by_id = customers_client.post(
        "/v1/customers/explain", json={"customer_ids": [9, 777777], "top_k": 3}, headers=auth
    )
    assert by_id.status_code == 200, by_id.text
    found, missing = by_id.json()["results"]
    by_rows = customers_client.post(
        "/v1/explain", json={"rows": [_latest(table, 9)], "top_k": 3}, headers=auth
    ).json()["explanations"][0]

    assert missing["status"] == "not_found" and missing["contributions"] == []
    assert found["contributions"] == by_rows["contributions"]
    assert found["probability"] == by_rows["probability"]
    assert len(found["contributions"]) == 3


@pytest.mark.parametrize(
    "body",
    [{}, {"customer_ids": []}, {"customer_ids": ["x"]}, {"customer_ids": [1], "extra": 1}],
)
def test_bad_bodies_get_422_without_echoing_values(
    customers_client: TestClient, auth: dict[str, str], body: dict[str, Any]
):
    response = customers_client.post("/v1/customers/predict", json=body, headers=auth)
    assert response.status_code == 422
    assert "'x'" not in response.text and '"x"' not in response.text


def test_too_many_ids_get_422_naming_the_limit(
    xgb_bundle: Path, make_settings, repo_root: Path, store_yaml: str, auth: dict[str, str]
):
    settings = make_settings(
        xgb_bundle,
        feature_repo=repo_root / "feature_repo",
        feature_store_yaml=store_yaml,
        max_predict_rows=2,
    )
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/v1/customers/predict", json={"customer_ids": [1, 2, 3]}, headers=auth
        )
    assert response.status_code == 422
    assert "at most 2 customer ids" in response.text


def test_without_a_feature_store_the_route_answers_503(client: TestClient, auth: dict[str, str]):
    response = client.post("/v1/customers/predict", json={"customer_ids": [1]}, headers=auth)
    assert response.status_code == 503
    assert "CHURN_FEATURE_REPO" in response.json()["detail"]


def test_requires_a_token(customers_client: TestClient):
    response = customers_client.post("/v1/customers/predict", json={"customer_ids": [1]})
    assert response.status_code == 401


def test_found_customers_reach_the_prediction_log(
    customers_client: TestClient, auth: dict[str, str], tmp_path: Path
):
    import json
    import time

    customers_client.post(
        "/v1/customers/predict", json={"customer_ids": [11, 5555555]}, headers=auth
    )
    deadline = time.monotonic() + 5
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not records:
        for path in (tmp_path / "logs").glob("predictions*"):
            records += [json.loads(line) for line in path.read_text().splitlines() if line]
        time.sleep(0.1)
    assert [r["customer_id"] for r in records] == [11]
    assert set(records[0]["features"]) == set(FEATURES)


def test_openapi_documents_the_routes_only_with_a_feature_store(
    customers_client: TestClient, client: TestClient
):
    with_store = customers_client.get("/openapi.json").json()["paths"]
    without = client.get("/openapi.json").json()["paths"]

    for path in ("/v1/customers/predict", "/v1/customers/explain"):
        body = with_store[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body["required"] == ["customer_ids"]
        assert with_store[path]["post"]["security"] == [{"HTTPBearer": []}]
        assert path not in without


def test_concurrent_requests_share_online_reads_and_get_their_own_customers(
    customers_settings: Callable[..., ServingSettings], auth: dict[str, str]
):
    import asyncio

    import httpx

    app = create_app(customers_settings())
    state = app.state.churn
    asks = [[cid, 424242 + cid] if cid % 3 == 0 else [cid] for cid in range(1, 17)]

    async def post_all(bodies: list[list[int]]) -> list[dict[str, Any]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                together = await asyncio.gather(
                    *(
                        client.post(
                            "/v1/customers/predict", json={"customer_ids": ids}, headers=auth
                        )
                        for ids in bodies
                    )
                )
                alone = [
                    await client.post(
                        "/v1/customers/predict", json={"customer_ids": ids}, headers=auth
                    )
                    for ids in bodies
                ]
        return [
            (a.json()["results"], b.json()["results"]) for a, b in zip(together, alone, strict=True)
        ]

    answers = asyncio.run(post_all(asks))

    for ids, (together, alone) in zip(asks, answers, strict=True):
        assert [r["customer_id"] for r in together] == ids
        assert [r["status"] for r in together] == ["found"] + ["not_found"] * (len(ids) - 1)
        assert [r["probability"] for r in together] == pytest.approx(
            [r["probability"] for r in alone], abs=1e-12
        )
    assert state.lookup_batcher.batched_requests == 2 * len(asks)
    # the sequential requests needed one read each; the concurrent ones shared reads
    assert state.lookup_batcher.batches - len(asks) < len(asks)

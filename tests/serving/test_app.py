"""Every route of the serving app, every class of bad input, through a started TestClient."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn_mlops.release.demo import load_demo_pipeline as load_pipeline
from churn_mlops.serving.app import create_app
from churn_mlops.serving.settings import ServingSettings

SECRET_VALUE = "zz-caller-secret-zz"
JSON = {"Content-Type": "application/json"}


def predict(client: TestClient, rows: list[dict], headers: dict, **kw: Any):
    return client.post("/v1/predict", json={"rows": rows}, headers=headers, **kw)


def assert_clean_error(response, status: int, *, expect_loc: list | None = None) -> list[dict]:
    """The status, ``{"detail": [...]}`` with field paths, and none of the caller's data."""
    assert response.status_code == status, response.text
    assert SECRET_VALUE not in response.text
    assert "Traceback" not in response.text
    detail = response.json()["detail"]
    if expect_loc is not None:
        assert any(err["loc"] == expect_loc for err in detail), detail
        for err in detail:
            assert set(err) == {"loc", "msg", "type"}  # no "input", "ctx" or "url"
    return detail


# ------------------------------------------------------------------------------ predict


def test_predict_matches_the_pipeline_and_applies_the_threshold(
    client: TestClient, auth: dict, sample_rows: list[dict], xgb_bundle: Path
) -> None:
    rows = [dict(r, customer_id=1000 + i) for i, r in enumerate(sample_rows[:25])]
    response = predict(client, rows, auth)
    assert response.status_code == 200, response.text
    body = response.json()
    meta = json.loads((xgb_bundle / "model_metadata.json").read_text())
    expected = load_pipeline(xgb_bundle).predict_proba(pd.DataFrame(sample_rows[:25]))[:, 1]
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert body["model_version"] == "1" and body["threshold"] == meta["threshold"]
    assert response.headers["x-request-id"] == body["request_id"]
    ids = [p["request_id"] for p in body["predictions"]]
    assert len(set(ids)) == len(ids) and all(i.startswith(body["request_id"]) for i in ids)
    for p, row in zip(body["predictions"], rows, strict=True):
        assert p["label"] == int(p["probability"] >= meta["threshold"])
        assert p["customer_id"] == row["customer_id"]
        assert p["model_version"] == "1"


def test_single_row_prediction_id_is_the_request_id(
    client: TestClient, auth: dict, sample_rows: list[dict]
) -> None:
    response = predict(client, sample_rows[:1], {**auth, "X-Request-ID": "order-42"})
    body = response.json()
    assert body["request_id"] == "order-42"
    assert body["predictions"][0]["request_id"] == "order-42"
    # An unsafe caller id is replaced, never echoed.
    response = predict(client, sample_rows[:1], {**auth, "X-Request-ID": "<script>"})
    assert response.json()["request_id"] != "<script>"


@pytest.mark.parametrize(
    ("mutate", "loc", "error_type"),
    [
        (
            lambda r: r.update(unknown_field=SECRET_VALUE),
            ["body", "rows", 0, "<unknown field>"],  # invented names are never echoed
            "extra_forbidden",
        ),
        (lambda r: r.update(age=SECRET_VALUE), ["body", "rows", 0, "age"], "float_type"),
        (lambda r: r.update(age=True), ["body", "rows", 0, "age"], "float_type"),
        (lambda r: r.update(age=17), ["body", "rows", 0, "age"], "greater_than_equal"),
        (lambda r: r.update(age=101), ["body", "rows", 0, "age"], "less_than_equal"),
        (
            lambda r: r.update(monthly_fee=-0.01),
            ["body", "rows", 0, "monthly_fee"],
            "greater_than_equal",
        ),
        (
            lambda r: r.update(contract=SECRET_VALUE),
            ["body", "rows", 0, "contract"],
            "literal_error",
        ),
        (lambda r: r.pop("tenure_days"), ["body", "rows", 0, "tenure_days"], "missing"),
        (lambda r: r.update(region=None), ["body", "rows", 0, "region"], "literal_error"),
        (lambda r: r.update(sessions_30d=None), ["body", "rows", 0, "sessions_30d"], "float_type"),
    ],
)
def test_bad_rows_are_refused_with_field_paths(
    client: TestClient, auth: dict, sample_rows: list[dict], mutate, loc, error_type
) -> None:
    row = dict(sample_rows[0])
    mutate(row)
    detail = assert_clean_error(
        predict(client, [sample_rows[1], row][1:], auth), 422, expect_loc=loc
    )
    assert any(err["type"] == error_type for err in detail)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused(
    client: TestClient, auth: dict, sample_rows: list[dict], token: str
) -> None:
    text = json.dumps({"rows": [dict(sample_rows[0], usage_trend=12345.5)]})
    body = text.replace("12345.5", token)
    response = client.post(
        "/v1/predict", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert_clean_error(response, 422, expect_loc=["body", "rows", 0, "usage_trend"])
    # Strings spelling them are not numbers either.
    text = json.dumps({"rows": [dict(sample_rows[0], usage_trend=token)]})
    response = client.post("/v1/predict", content=text, headers={**auth, **JSON})
    assert_clean_error(response, 422, expect_loc=["body", "rows", 0, "usage_trend"])


def test_row_limits_and_malformed_bodies(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
) -> None:
    settings = make_settings(xgb_bundle, max_predict_rows=5, max_explain_rows=2)
    with TestClient(create_app(settings)) as client:
        assert_clean_error(predict(client, sample_rows[:6], auth), 422, expect_loc=["body", "rows"])
        assert predict(client, sample_rows[:5], auth).status_code == 200
        assert_clean_error(predict(client, [], auth), 422, expect_loc=["body", "rows"])
        response = client.post("/v1/explain", json={"rows": sample_rows[:3]}, headers=auth)
        assert_clean_error(response, 422, expect_loc=["body", "rows"])
        response = client.post("/v1/predict", json={"rows": sample_rows[:1], "x": 1}, headers=auth)
        assert_clean_error(response, 422, expect_loc=["body", "<unknown field>"])
        for raw in (b"", b"{", b"[]", b'{"rows": {}}', SECRET_VALUE.encode()):
            response = client.post("/v1/predict", content=raw, headers={**auth, **JSON})
            assert_clean_error(response, 422)


def test_body_size_limit_gives_413_by_header_and_by_stream(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
) -> None:
    settings = make_settings(xgb_bundle, max_body_bytes=4096)
    big = json.dumps({"rows": sample_rows[:40]}).encode()
    assert len(big) > 4096
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/predict", content=big, headers={**auth, **JSON})
        assert response.status_code == 413
        assert "4096" in response.json()["detail"]

        def chunks():  # no Content-Length: the limit applies while reading
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        response = client.post("/v1/predict", content=chunks(), headers={**auth, **JSON})
        assert response.status_code == 413
        response = client.post("/v1/feedback", content=chunks(), headers={**auth, **JSON})
        assert response.status_code == 413
        assert predict(client, sample_rows[:2], auth).status_code == 200


def test_unknown_category_policy_ignore_scores_like_the_pipeline(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
) -> None:
    row = dict(sample_rows[0], region="atlantis", plan="platinum")
    with TestClient(create_app(make_settings(xgb_bundle, unknown_category="ignore"))) as client:
        response = predict(client, [row], auth)
        assert response.status_code == 200, response.text
        expected = load_pipeline(xgb_bundle).predict_proba(pd.DataFrame([row]))[0, 1]
        assert response.json()["predictions"][0]["probability"] == pytest.approx(expected, abs=1e-6)
    with TestClient(create_app(make_settings(xgb_bundle))) as client:  # default: reject
        assert_clean_error(
            predict(client, [row], auth), 422, expect_loc=["body", "rows", 0, "region"]
        )


def test_predict_route_answers_and_counts_every_outcome(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    make_token: Callable[..., str],
    sample_rows: list[dict],
) -> None:
    settings = make_settings(xgb_bundle, max_body_bytes=2048)
    with TestClient(create_app(settings)) as client:
        ok = predict(client, sample_rows[:3], {**auth, "X-Request-ID": "same-id"})
        assert ok.status_code == 200
        body = ok.json()
        assert [p["request_id"] for p in body["predictions"]] == [
            "same-id-0",
            "same-id-1",
            "same-id-2",
        ]
        bad = predict(client, [dict(sample_rows[0], age="x")], auth)
        assert bad.status_code == 422
        assert bad.json() == {
            "detail": [
                {
                    "loc": ["body", "rows", 0, "age"],
                    "msg": "Input should be a valid number",
                    "type": "float_type",
                }
            ]
        }
        assert predict(client, sample_rows[:1], {}).status_code == 401
        wrong = {"Authorization": f"Bearer {make_token(scope='admin')}"}
        assert predict(client, sample_rows[:1], wrong).status_code == 403
        assert predict(client, sample_rows[:30], auth).status_code == 413
        metrics = client.get("/metrics").text
        assert (
            'churn_http_requests_total{method="POST",model_version="1",route="/v1/predict",'
            'status="200"} 1.0' in metrics
        )
        assert 'route="/v1/predict",status="413"' in metrics


# ------------------------------------------------------------------------------ explain


def test_explain_returns_top_k_contributions_adding_up_to_the_logit(
    client: TestClient, auth: dict, sample_rows: list[dict]
) -> None:
    response = client.post("/v1/explain", json={"rows": sample_rows[:3], "top_k": 19}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    scores = predict(client, sample_rows[:3], auth).json()["predictions"]
    for explanation, score in zip(body["explanations"], scores, strict=True):
        contributions = explanation["contributions"]
        assert len(contributions) == 19
        logit = explanation["base_value"] + sum(c["contribution"] for c in contributions)
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(score["probability"], abs=1e-5)
        assert explanation["probability"] == pytest.approx(score["probability"], abs=1e-5)
    default = client.post("/v1/explain", json={"rows": sample_rows[:1]}, headers=auth).json()
    assert len(default["explanations"][0]["contributions"]) == 5
    response = client.post("/v1/explain", json={"rows": sample_rows[:1], "top_k": 0}, headers=auth)
    assert_clean_error(response, 422, expect_loc=["body", "top_k"])
    response = client.post("/v1/explain", json={"rows": sample_rows[:21]}, headers=auth)
    assert_clean_error(response, 422, expect_loc=["body", "rows"])


def test_explain_for_logistic_regression(
    lr_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
) -> None:
    with TestClient(create_app(make_settings(lr_bundle))) as client:
        response = client.post(
            "/v1/explain", json={"rows": sample_rows[:2], "top_k": 3}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "2"
        assert len(response.json()["explanations"][1]["contributions"]) == 3


# ------------------------------------------------------------------- model, health, docs


def test_model_info(client: TestClient, auth: dict, xgb_bundle: Path) -> None:
    response = client.get("/v1/model", headers=auth)
    assert response.status_code == 200
    info = response.json()
    meta = json.loads((xgb_bundle / "model_metadata.json").read_text())
    assert info["model_name"] == meta["model_name"] and info["model_version"] == "1"
    assert info["threshold"] == meta["threshold"]
    assert [f["name"] for f in info["features"]] == [f["name"] for f in meta["features"]]
    assert info["predictor"] == "xgboost"
    assert client.get("/v1/model").status_code == 401


def test_health_ready_only_after_the_model_is_loaded(
    xgb_bundle: Path, make_settings: Callable[..., ServingSettings]
) -> None:
    app = create_app(make_settings(xgb_bundle))
    client = TestClient(app)  # no context manager: lifespan (model load) has not run
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").status_code == 503
    assert "churn_model_ready 0.0" in client.get("/metrics").text
    with client:
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "model_version": "1"}
        assert "churn_model_ready 1.0" in client.get("/metrics").text


def test_startup_fails_clearly_on_a_broken_bundle(
    tmp_path: Path, make_settings: Callable[..., ServingSettings]
) -> None:
    from churn_mlops.serving.errors import BundleError

    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        with TestClient(create_app(make_settings(tmp_path / "empty"))):
            pass


def test_openapi_documents_the_generated_request_model(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    row = schema["components"]["schemas"]["FeatureRow"]
    assert row["additionalProperties"] is False
    assert row["properties"]["contract"]["enum"] == ["month_to_month", "one_year", "two_year"]
    assert row["properties"]["age"]["minimum"] == 18
    assert "rows" in schema["components"]["schemas"]["PredictRequest"]["properties"]
    assert schema["paths"]["/v1/predict"]["post"]["security"] == [{"HTTPBearer": []}]
    assert client.get("/docs").status_code == 200


def test_docs_can_be_switched_off(
    xgb_bundle: Path, make_settings: Callable[..., ServingSettings]
) -> None:
    with TestClient(create_app(make_settings(xgb_bundle, docs_enabled=False))) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404


def test_unexpected_errors_are_500_without_traceback(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    sample_rows: list[dict],
) -> None:
    app = create_app(make_settings(xgb_bundle))
    with TestClient(app, raise_server_exceptions=False) as client:
        model = app.state.churn.store.current

        def broken(rows):
            raise RuntimeError(f"boom with {SECRET_VALUE}")

        object.__setattr__(model.predictor, "predict_proba", broken)
        response = predict(client, sample_rows[:1], auth)
        assert response.status_code == 500
        assert response.json() == {"detail": "internal server error"}
        assert SECRET_VALUE not in response.text


# ----------------------------------------------------------------------------- auth


def test_auth_on_every_protected_route(
    client: TestClient,
    auth: dict,
    admin_auth: dict,
    make_token: Callable[..., str],
    sample_rows: list[dict],
) -> None:
    admin_only = {"Authorization": f"Bearer {make_token(scope='admin')}"}
    calls = [
        ("post", "/v1/predict", {"rows": sample_rows[:1]}, "predict"),
        ("post", "/v1/explain", {"rows": sample_rows[:1]}, "predict"),
        ("get", "/v1/model", None, "predict"),
        ("post", "/v1/feedback", {"feedback": [{"request_id": "a", "label": 1}]}, "predict"),
        ("get", "/v1/admin/reload", None, "admin"),
    ]
    for method, path, body, scope in calls:
        kwargs = {"json": body} if body is not None else {}
        missing = getattr(client, method)(path, **kwargs)
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = admin_only if scope == "predict" else auth
        refused = getattr(client, method)(path, headers=wrong, **kwargs)
        assert refused.status_code == 403, path
        assert "insufficient_scope" in refused.headers["www-authenticate"]
        right = auth if scope == "predict" else admin_auth
        assert getattr(client, method)(path, headers=right, **kwargs).status_code < 300, path
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert client.get(path).status_code == 200


def test_auth_can_be_switched_off(
    xgb_bundle: Path, tmp_path: Path, sample_rows: list[dict]
) -> None:
    settings = ServingSettings(
        model_dir=xgb_bundle, auth_enabled=False, prediction_log_dir=tmp_path / "logs"
    )
    with TestClient(create_app(settings)) as client:
        assert predict(client, sample_rows[:1], {}).status_code == 200

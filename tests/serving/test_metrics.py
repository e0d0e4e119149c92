"""/metrics exposes every metric of the contract, and PSI moves when live inputs drift."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from churn_mlops.release.demo import make_synthetic_features
from churn_mlops.serving.app import create_app
from churn_mlops.serving.settings import ServingSettings

CONTRACT = {
    "churn_http_requests_total": ("counter", {"route", "method", "status", "model_version"}),
    "churn_http_request_duration_seconds": ("histogram", {"route"}),
    "churn_http_requests_in_flight": ("gauge", set()),
    "churn_prediction_score": ("histogram", {"model_version"}),
    "churn_predictions_total": ("counter", {"model_version", "label"}),
    "churn_feature_psi": ("gauge", {"feature"}),
    "churn_model_ready": ("gauge", set()),
    "churn_model_info": ("gauge", {"model_name", "model_version"}),
}


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        assert match, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        found.setdefault(match.group(1), []).append((labels, float(match.group(3))))
    return found


def psi_of(client: TestClient) -> dict[str, float]:
    return {
        labels["feature"]: value
        for labels, value in samples(client.get("/metrics").text).get("churn_feature_psi", [])
    }


def rows_of(frame) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def test_every_contract_metric_with_its_type_and_labels(
    client: TestClient, auth: dict, sample_rows: list[dict]
) -> None:
    client.post("/v1/predict", json={"rows": sample_rows[:30]}, headers=auth)
    client.get("/no/such/page")
    text = client.get("/metrics").text
    for name, (kind, _) in CONTRACT.items():
        assert f"# TYPE {name} {kind}" in text, name
    found = samples(text)
    for name, (kind, labels) in CONTRACT.items():
        key = f"{name}_count" if kind == "histogram" else name
        assert key in found, name
        for sample_labels, _ in found[key]:
            assert set(sample_labels) - {"le"} == labels, (name, sample_labels)
    counts = {(s["route"], s["status"]): v for s, v in found["churn_http_requests_total"]}
    assert counts[("/v1/predict", "200")] == 1.0
    assert counts[("other", "404")] == 1.0  # unknown paths do not create new label values
    assert sum(v for _, v in found["churn_predictions_total"]) == 30.0
    assert dict((s["model_version"], v) for s, v in found["churn_prediction_score_count"]) == {
        "1": 30.0
    }
    assert found["churn_model_ready"] == [({}, 1.0)]
    assert found["churn_model_info"] == [({"model_name": "churn_model", "model_version": "1"}, 1.0)]


def test_psi_moves_when_live_inputs_drift(
    xgb_bundle: Path, make_settings: Callable[..., ServingSettings], auth: dict
) -> None:
    settings = make_settings(xgb_bundle, drift_window=300, drift_min_samples=100)
    with TestClient(create_app(settings)) as client:
        assert psi_of(client) == {}  # below drift_min_samples: no value rather than noise
        calm, _ = make_synthetic_features(300, seed=40)
        for start in range(0, 300, 100):
            chunk = rows_of(calm.iloc[start : start + 100])
            assert client.post("/v1/predict", json={"rows": chunk}, headers=auth).status_code == 200
        before = psi_of(client)
        assert len(before) == 19 and max(before.values()) < 0.1, before
        drifted = calm.assign(
            late_payments_90d=calm["late_payments_90d"] + 4,
            payment_method="electronic_check",
        )
        for start in range(0, 300, 100):
            chunk = rows_of(drifted.iloc[start : start + 100])
            assert client.post("/v1/predict", json={"rows": chunk}, headers=auth).status_code == 200
        after = psi_of(client)
        assert after["late_payments_90d"] > 1.0 and after["payment_method"] > 0.5, after
        assert after["age"] < 0.1

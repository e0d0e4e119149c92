"""Hot reload: atomic swap to a newer bundle; a failed load leaves the old model serving."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from churn_mlops.serving import model_store
from churn_mlops.serving.app import create_app
from churn_mlops.serving.errors import ParityError
from churn_mlops.serving.fastpath import PipelinePredictor
from churn_mlops.serving.settings import ServingSettings


def wait_for_reload(client: TestClient, headers: dict, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get("/v1/admin/reload", headers=headers).json()
        if status["state"] != "loading":
            return status
        time.sleep(0.05)
    raise AssertionError("reload did not finish")


def versions(client: TestClient, auth: dict, rows: list[dict]) -> set[str]:
    body = client.post("/v1/predict", json={"rows": rows}, headers=auth).json()
    return {p["model_version"] for p in body["predictions"]}


def test_reload_swaps_to_the_new_bundle(
    xgb_bundle: Path,
    lr_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    admin_auth: dict,
    sample_rows: list[dict],
) -> None:
    with TestClient(create_app(make_settings(xgb_bundle))) as client:
        assert client.get("/v1/admin/reload", headers=admin_auth).json()["state"] == "idle"
        assert versions(client, auth, sample_rows[:3]) == {"1"}
        response = client.post(
            "/v1/admin/reload", json={"model_dir": str(lr_bundle)}, headers=admin_auth
        )
        assert response.status_code == 202
        assert response.json()["state"] == "loading"
        status = wait_for_reload(client, admin_auth)
        assert status["state"] == "succeeded" and status["model_version"] == "2"
        assert versions(client, auth, sample_rows[:3]) == {"2"}
        info = client.get("/v1/model", headers=auth).json()
        assert info["model_version"] == "2" and info["predictor"] == "logistic_regression"
        metrics = client.get("/metrics").text
        assert 'churn_model_info{model_name="churn_model",model_version="2"} 1.0' in metrics
        assert 'model_version="1"} 1.0\n' not in metrics.split("churn_model_info")[-1]
        assert client.get("/health/ready").json()["model_version"] == "2"


def test_failed_reload_keeps_the_old_model(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    auth: dict,
    admin_auth: dict,
    sample_rows: list[dict],
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(xgb_bundle, broken)
    (broken / "model" / "model.joblib").write_bytes(b"not a pickle")
    with TestClient(create_app(make_settings(xgb_bundle))) as client:
        before = client.post("/v1/predict", json={"rows": sample_rows[:2]}, headers=auth).json()
        response = client.post(
            "/v1/admin/reload", json={"model_dir": str(broken)}, headers=admin_auth
        )
        assert response.status_code == 202
        status = wait_for_reload(client, admin_auth)
        assert status["state"] == "failed"
        assert "could not be loaded" in status["error"]
        assert status["model_version"] == "1"
        after = client.post("/v1/predict", json={"rows": sample_rows[:2]}, headers=auth).json()
        assert [p["probability"] for p in after["predictions"]] == [
            p["probability"] for p in before["predictions"]
        ]
        assert client.get("/health/ready").status_code == 200


def test_reload_refuses_missing_or_outside_folders_and_a_second_reload(
    xgb_bundle: Path,
    lr_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    admin_auth: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(xgb_bundle, reload_root=xgb_bundle.parent)
    with TestClient(create_app(settings)) as client:
        missing = client.post(
            "/v1/admin/reload",
            json={"model_dir": str(xgb_bundle.parent / "nope")},
            headers=admin_auth,
        )
        assert missing.status_code == 400 and "does not exist" in missing.json()["detail"]
        outside = client.post("/v1/admin/reload", json={"model_dir": "/"}, headers=admin_auth)
        assert outside.status_code == 400 and "CHURN_RELOAD_ROOT" in outside.json()["detail"]
        assert (
            client.post("/v1/admin/reload", json={"model_dir": 5}, headers=admin_auth).status_code
            == 422
        )

        release = threading.Event()
        real_load = model_store.load_model

        def slow_load(bundle_dir, settings):
            release.wait(30)
            return real_load(bundle_dir, settings)

        monkeypatch.setattr(model_store, "load_model", slow_load)
        first = client.post("/v1/admin/reload", headers=admin_auth)  # default: CHURN_MODEL_DIR
        assert first.status_code == 202
        second = client.post("/v1/admin/reload", headers=admin_auth)
        assert second.status_code == 409
        release.set()
        assert wait_for_reload(client, admin_auth)["state"] == "succeeded"


def test_parity_failure_falls_back_to_the_pipeline(
    xgb_bundle: Path,
    make_settings: Callable[..., ServingSettings],
    monkeypatch: pytest.MonkeyPatch,
    sample_rows: list[dict],
) -> None:
    real_compile = model_store.compile_pipeline

    def off_by_a_bit(pipeline, **kwargs):
        fast = real_compile(pipeline, **kwargs)
        proba = fast._proba
        fast._proba = lambda X: proba(X) + 1e-4
        return fast

    monkeypatch.setattr(model_store, "compile_pipeline", off_by_a_bit)
    loaded = model_store.load_model(xgb_bundle, make_settings(xgb_bundle))
    assert isinstance(loaded.predictor, PipelinePredictor)
    with pytest.raises(ParityError, match="differs from Pipeline.predict_proba"):
        model_store.check_parity(off_by_a_bit(loaded.pipeline), loaded.pipeline, sample_rows[:5])
    # The slow path still answers exactly.
    import pandas as pd

    expected = loaded.pipeline.predict_proba(pd.DataFrame(sample_rows[:5]))[:, 1]
    np.testing.assert_allclose(loaded.predictor.predict_proba(sample_rows[:5]), expected)


def test_metadata_must_declare_every_model_column(
    xgb_bundle: Path, make_settings: Callable[..., ServingSettings], tmp_path: Path
) -> None:
    import json

    from churn_mlops.serving.errors import BundleError

    bundle = tmp_path / "undeclared"
    shutil.copytree(xgb_bundle, bundle)
    meta = json.loads((bundle / "model_metadata.json").read_text())
    meta["features"] = [f for f in meta["features"] if f["name"] != "usage_trend"]
    (bundle / "model_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"reads columns \['usage_trend'\]"):
        model_store.load_model(bundle, make_settings(bundle))
    meta["features"] = [{"name": "x", "kind": "categorical"}]
    (bundle / "model_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="features.0: Value error, categorical feature 'x'"):
        model_store.load_model(bundle, make_settings(bundle))


def test_nullable_feature_accepts_null_and_scores_like_the_pipeline(
    tmp_path: Path, make_settings: Callable[..., ServingSettings], auth: dict
) -> None:
    """``"nullable": true`` in the metadata lets a feature be null; the imputer fills it."""
    import json

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from churn_mlops.serving.demo import (
        CATEGORICAL,
        NUMERIC,
        build_metadata,
        build_reference_profile,
        make_synthetic_features,
        write_bundle,
    )

    features, label = make_synthetic_features(800, seed=4)
    numeric = Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL),
            ),
            ("numeric", numeric, list(NUMERIC)),
        ]
    )
    pipeline = Pipeline(
        [("preprocess", preprocess), ("model", LogisticRegression(max_iter=500))]
    ).fit(features, label)
    meta = build_metadata(model_version="5")
    for feature in meta["features"]:
        if feature["name"] == "monthly_fee":
            feature["nullable"] = True
    bundle = write_bundle(
        tmp_path / "nullable",
        pipeline,
        meta,
        build_reference_profile(features, pipeline.predict_proba(features)[:, 1]),
    )
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in features.iloc[0].items()}
    with TestClient(create_app(make_settings(bundle))) as client:
        assert client.get("/v1/model", headers=auth).json()["predictor"] == "logistic_regression"
        response = client.post(
            "/v1/predict", json={"rows": [dict(row, monthly_fee=None)]}, headers=auth
        )
        assert response.status_code == 200, response.text
        expected = pipeline.predict_proba(pd.DataFrame([dict(row, monthly_fee=np.nan)]))[0, 1]
        assert response.json()["predictions"][0]["probability"] == pytest.approx(expected, abs=1e-6)
        refused = client.post("/v1/predict", json={"rows": [dict(row, age=None)]}, headers=auth)
        assert refused.status_code == 422
        assert json.loads(refused.text)["detail"][0]["loc"] == ["body", "rows", 0, "age"]

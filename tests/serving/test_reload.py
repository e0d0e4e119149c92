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
    (broken / "model" / "model.onnx").write_bytes(b"not a model")
    with TestClient(create_app(make_settings(xgb_bundle))) as client:
        before = client.post("/v1/predict", json={"rows": sample_rows[:2]}, headers=auth).json()
        response = client.post(
            "/v1/admin/reload", json={"model_dir": str(broken)}, headers=admin_auth
        )
        assert response.status_code == 202
        status = wait_for_reload(client, admin_auth)
        assert status["state"] == "failed"
        assert "model/model.onnx fails its checksum" in status["error"]
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
        assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]
        outside = client.post("/v1/admin/reload", json={"model_dir": "/"}, headers=admin_auth)
        assert outside.status_code == 403 and "CHURN_RELOAD_ROOT" in outside.json()["detail"]
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


def reseal(bundle: Path) -> None:
    """Rewrite the manifest's checksums after a test edited a bundle file on purpose."""
    import json

    from churn_mlops.serving.bundle import MANIFEST_FILE, checksums

    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    manifest["files"] = checksums(bundle, [Path(p) for p in manifest["files"]])
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))


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
    reseal(bundle)
    with pytest.raises(BundleError, match=r"reads columns \['usage_trend'\]"):
        model_store.load_model(bundle, make_settings(bundle))
    meta["features"] = [{"name": "x", "kind": "categorical"}]
    (bundle / "model_metadata.json").write_text(json.dumps(meta))
    reseal(bundle)
    with pytest.raises(BundleError, match="features.0: Value error, categorical feature 'x'"):
        model_store.load_model(bundle, make_settings(bundle))


def test_nullable_feature_accepts_null_and_scores_like_the_pipeline(
    tmp_path: Path, make_settings: Callable[..., ServingSettings], auth: dict
) -> None:
    """``"nullable": true`` in the metadata lets a feature be null; XGBoost treats it as
    missing, and so does the ONNX graph (NaN through the scaler into the trees)."""
    import json

    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from xgboost import XGBClassifier

    from churn_mlops.release.demo import (
        CATEGORICAL,
        NUMERIC,
        build_metadata,
        build_reference_profile,
        make_synthetic_features,
        write_bundle,
    )

    features, label = make_synthetic_features(800, seed=4)
    features = features.assign(monthly_fee=features["monthly_fee"].mask(features.index % 7 == 0))
    numeric = StandardScaler()
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
        [("preprocess", preprocess), ("model", XGBClassifier(n_estimators=40, max_depth=3))]
    ).fit(features, label)
    meta = build_metadata(model_version="5")
    for feature in meta["features"]:
        if feature["name"] == "monthly_fee":
            feature["nullable"] = True
    bundle = write_bundle(
        tmp_path / "nullable",
        pipeline,
        meta,
        build_reference_profile(features.dropna(), pipeline.predict_proba(features.dropna())[:, 1]),
        background=features,
    )
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in features.iloc[1].items()}
    with TestClient(create_app(make_settings(bundle))) as client:
        assert client.get("/v1/model", headers=auth).json()["predictor"] == "xgboost"
        response = client.post(
            "/v1/predict", json={"rows": [dict(row, monthly_fee=None)]}, headers=auth
        )
        assert response.status_code == 200, response.text
        expected = pipeline.predict_proba(pd.DataFrame([dict(row, monthly_fee=np.nan)]))[0, 1]
        assert response.json()["predictions"][0]["probability"] == pytest.approx(expected, abs=1e-6)
        refused = client.post("/v1/predict", json={"rows": [dict(row, age=None)]}, headers=auth)
        assert refused.status_code == 422
        assert json.loads(refused.text)["detail"][0]["loc"] == ["body", "rows", 0, "age"]

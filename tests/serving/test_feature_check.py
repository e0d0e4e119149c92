"""Start-up check: the app refuses a feature repository that lacks what the bundle needs."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn_mlops.feature_store.config import parse_feature_store_config
from churn_mlops.feature_store.repository import FeatureRepository
from churn_mlops.pipelines.feature_store import nodes
from churn_mlops.serving.app import create_app
from churn_mlops.serving.bundle import checksums
from churn_mlops.serving.errors import FeatureRepositoryError
from churn_mlops.serving.feature_check import feature_store_gaps
from churn_mlops.serving.settings import ServingSettings
from tests.conftest import PROJECT_ROOT
from tests.feature_store.support import store_config, store_parameters, write_table
from tests.pipelines.training.synthetic import feature_list, make_model_input_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_model_input_table(n_customers=30, n_months=2, seed=11)


def _register(root: Path, table: pd.DataFrame, feature_views: dict[str, list[str]]) -> Path:
    """A feature repository in ``root`` with ``feature_views`` registered (not materialized)."""
    shutil.copytree(PROJECT_ROOT / "feature_repo", root / "feature_repo")
    (root / "data" / "04_feature").mkdir(parents=True)
    repository = FeatureRepository(root / "feature_repo", offline_source=write_table(root, table))
    committed = store_parameters()
    # Push sources exist only for views that exist: keep the pushed views that remain.
    pushed = [name for name in committed.get("pushed_views", []) if name in feature_views]
    params = {**committed, "feature_views": feature_views, "pushed_views": pushed}
    config = parse_feature_store_config(params, feature_list())
    nodes.register_feature_views(repository, nodes.define_feature_views(table, config, repository))
    return root / "feature_repo"


def _bundle_needing(
    bundle: Path, folder: Path, online_store: str = "sqlite", extra_view: str | None = None
) -> Path:
    """A copy of ``bundle`` whose metadata and manifest name the committed feature views
    (with ``age`` moved to a view ``extra_view`` when given)."""
    copy = shutil.copytree(bundle, folder)
    requirement = store_config().requirement().model_dump(mode="json")
    if extra_view is not None:
        for view in requirement["feature_views"]:
            view["features"] = [name for name in view["features"] if name != "age"]
        requirement["feature_views"].append({"name": extra_view, "features": ["age"]})
    metadata = json.loads((copy / "model_metadata.json").read_text())
    (copy / "model_metadata.json").write_text(
        json.dumps({**metadata, "feature_store": requirement})
    )
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"].update(checksums(copy, [Path("model_metadata.json")]))
    manifest["feature_store"] = {**requirement, "online_store": online_store}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _start(settings: ServingSettings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200


def test_a_repository_serving_the_bundles_views_starts(
    xgb_bundle: Path, make_settings: Callable[..., Any], tmp_path: Path, table, caplog
):
    repo = _register(tmp_path / "project", table, store_parameters()["feature_views"])
    bundle = _bundle_needing(xgb_bundle, tmp_path / "bundle", online_store="redis")
    with caplog.at_level(logging.INFO, logger="churn_mlops.serving.feature_check"):
        _start(make_settings(bundle, feature_repo=repo))
    assert "serves every feature view" in caplog.text
    # The bundle declares Redis, the repository reads SQLite: logged, not refused.
    assert "expects a redis online store" in caplog.text and "reads sqlite" in caplog.text


def test_a_missing_view_stops_the_start_naming_it(
    xgb_bundle: Path, make_settings: Callable[..., Any], tmp_path: Path, table
):
    views = store_parameters()["feature_views"]
    merged = {"customer_all": [*views["customer_profile"], *views["customer_activity"]]}
    repo = _register(tmp_path / "project", table, merged)
    bundle = _bundle_needing(xgb_bundle, tmp_path / "bundle")
    with pytest.raises(FeatureRepositoryError) as raised:
        _start(make_settings(bundle, feature_repo=repo))
    message = str(raised.value)
    assert "['customer_profile', 'customer_activity'] are missing" in message
    assert "churn_model v1" in message and str(repo) in message


def test_a_view_without_a_needed_feature_is_named(
    xgb_bundle: Path, make_settings: Callable[..., Any], tmp_path: Path, table
):
    views = store_parameters()["feature_views"]
    moved = {
        "customer_profile": [n for n in views["customer_profile"] if n != "age"],
        "customer_activity": [*views["customer_activity"], "age"],
    }
    repo = _register(tmp_path / "project", table, moved)
    bundle = _bundle_needing(xgb_bundle, tmp_path / "bundle")
    with pytest.raises(
        FeatureRepositoryError, match=r"'customer_profile' lacks features \['age'\]"
    ):
        _start(make_settings(bundle, feature_repo=repo))


def test_an_unregistered_repository_stops_the_start(
    xgb_bundle: Path, make_settings: Callable[..., Any], tmp_path: Path
):
    shutil.copytree(PROJECT_ROOT / "feature_repo", tmp_path / "feature_repo")
    (tmp_path / "data" / "04_feature").mkdir(parents=True)
    with pytest.raises(FeatureRepositoryError, match="cannot be read.*--pipeline feature_store"):
        _start(make_settings(xgb_bundle, feature_repo=tmp_path / "feature_repo"))


def test_without_a_record_every_model_feature_must_be_served():
    served = {"customer_profile": ["age", "plan"]}
    assert feature_store_gaps(None, ["age", "plan"], "churn_model", served) == []
    (gap,) = feature_store_gaps(None, ["age", "sessions_30d"], "churn_model", served)
    assert "['sessions_30d'] are in no view of feature service 'churn_model'" in gap


def test_another_feature_service_is_named():
    needed = store_config().requirement()
    served = {view.name: list(view.features) for view in needed.feature_views}
    (gap,) = feature_store_gaps(needed, needed.feature_names, "other_model", served)
    assert gap == "its feature service is 'other_model', the model reads 'churn_model'"


def test_a_hot_reload_needing_a_missing_view_is_refused_and_the_old_model_serves(
    xgb_bundle: Path,
    make_settings: Callable[..., Any],
    tmp_path: Path,
    table,
    admin_auth: dict[str, str],
):
    repo = _register(tmp_path / "project", table, store_parameters()["feature_views"])
    serving = _bundle_needing(xgb_bundle, tmp_path / "bundle")
    newer = _bundle_needing(xgb_bundle, tmp_path / "newer", extra_view="customer_extra")
    with TestClient(create_app(make_settings(serving, feature_repo=repo))) as client:
        before = client.get("/v1/model", headers=admin_auth).json()
        started = client.post(
            "/v1/admin/reload", json={"model_dir": str(newer)}, headers=admin_auth
        )
        assert started.status_code == 202, started.text
        client.app.state.churn.store.wait_for_reload(timeout=60)
        status = client.get("/v1/admin/reload", headers=admin_auth).json()
        assert status["state"] == "failed"
        assert "FeatureRepositoryError" in status["error"]
        assert "['customer_extra'] are missing" in status["error"]
        assert client.app.state.churn.store.current.bundle_dir == serving
        assert client.get("/v1/model", headers=admin_auth).json() == before

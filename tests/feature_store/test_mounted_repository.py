"""The serving pods' repository layout (deploy/k8s/components/feature-store) works with Feast.

The pods see a read-only folder holding only the component's ``feature_store.yaml`` and the
registry the ``feature_store`` pipeline wrote (two ConfigMaps); the online rows come from Redis.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from churn_mlops.feature_store.repository import FeatureRepository
from tests.conftest import PROJECT_ROOT
from tests.feature_store.support import build_repository
from tests.pipelines.training.synthetic import make_model_input_table

COMPONENT_YAML = (
    PROJECT_ROOT / "deploy" / "k8s" / "components" / "feature-store" / "feature_store.yaml"
)


def _mount(folder: Path, registry: Path) -> Path:
    """What the projected volume shows the pod: two files, nothing writable."""
    folder.mkdir()
    shutil.copy(COMPONENT_YAML, folder / "feature_store.yaml")
    shutil.copy(registry, folder / "registry.db")
    for path in folder.iterdir():
        path.chmod(0o444)
    folder.chmod(0o555)
    return folder


def test_read_only_mount_serves_the_online_rows_from_redis(tmp_path: Path, redis_env: str):
    table = make_model_input_table(n_customers=40, n_months=3, seed=9)
    source = build_repository(tmp_path / "project", table, fs_yaml_file="feature_store.redis.yaml")
    registry = tmp_path / "project" / "data" / "04_feature" / "feast_registry.db"
    mounted = _mount(tmp_path / "etc-churn-feature_repo", registry)
    try:
        pod = FeatureRepository(mounted)
        ids = [1, 2, 3, 987654]
        assert pod.online_store_type == "redis"
        assert pod.feature_service == "churn_model"
        assert set(pod.service_views()) == {"customer_profile", "customer_activity"}
        read, expected = pod.online_features(ids), source.online_features(ids)
        assert read.rows[-1] is None  # unknown customer
        assert pd.DataFrame(read.rows[:3]).equals(pd.DataFrame(expected.rows[:3]))
        assert read.event_times == expected.event_times
        assert sorted(os.listdir(mounted)) == ["feature_store.yaml", "registry.db"]
    finally:
        mounted.chmod(0o755)

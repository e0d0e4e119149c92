"""The feature-store component: serving pods mount the Feast repository, Redis from a Secret.

Built into each serving overlay as ops would add it (``rendered_with_feature_store``); the
strict schema validation of these builds runs with the others in test_k8s.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import FEATURE_STORE_OVERLAYS, K8S_DIR, PROJECT_ROOT
from tests.deploy.test_k8s import (
    config_of,
    named,
    of_kind,
    pod_spec,
    serving_container,
    serving_deployments,
)

REDIS_SECRET = "churn-feature-store"
REDIS_KEY = "REDIS_CONNECTION_STRING"
REGISTRY_CONFIG_MAP = "churn-feature-registry"
COMPONENT = K8S_DIR / "components" / "feature-store"


def _env(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def _repo_volume(deployment: dict) -> tuple[dict, dict]:
    """The volume mounted at CHURN_FEATURE_REPO and its mount."""
    container = serving_container(deployment)
    folder = _env(container)["CHURN_FEATURE_REPO"]["value"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    return volume, mount


@pytest.mark.parametrize("overlay", FEATURE_STORE_OVERLAYS)
def test_pods_mount_the_repository_with_its_registry_read_only(overlay: str, objects) -> None:
    objs = objects(f"{overlay}-feature-store")
    deployments = list(serving_deployments(objs))
    assert deployments
    for deployment in deployments:
        volume, mount = _repo_volume(deployment)
        assert mount["readOnly"] is True
        sources = [s["configMap"] for s in volume["projected"]["sources"]]
        files = {item["path"]: source["name"] for source in sources for item in source["items"]}
        yaml_name = _env(serving_container(deployment))["CHURN_FEATURE_STORE_YAML"]["value"]
        config_map = named(objs, "ConfigMap", files[yaml_name])  # generated, so in the build
        settings = yaml.safe_load(config_map["data"][yaml_name])
        # The registry lies in the mounted folder, in the ConfigMap ops create from the file
        # the feature_store pipeline wrote.
        assert files[settings["registry"]] == REGISTRY_CONFIG_MAP
        assert settings["online_store"] == {
            "type": "redis",
            "connection_string": "${REDIS_CONNECTION_STRING}",
        }


@pytest.mark.parametrize("overlay", FEATURE_STORE_OVERLAYS)
def test_redis_connection_comes_from_the_secret_the_batch_job_uses(overlay: str, objects) -> None:
    objs = objects(f"{overlay}-feature-store")
    assert not of_kind(objs, "Secret"), "a Secret object would put its values in the repo"
    (cron,) = of_kind(objects("jobs/batch-scoring"), "CronJob")
    (job_container,) = pod_spec(cron)["containers"]
    job_ref = _env(job_container)[REDIS_KEY]["valueFrom"]["secretKeyRef"]
    for deployment in serving_deployments(objs):
        variable = _env(serving_container(deployment))[REDIS_KEY]
        assert "value" not in variable, "never an inline connection string"
        assert variable["valueFrom"]["secretKeyRef"] == {"name": REDIS_SECRET, "key": REDIS_KEY}
        assert job_ref == variable["valueFrom"]["secretKeyRef"]


@pytest.mark.parametrize("overlay", FEATURE_STORE_OVERLAYS)
def test_feature_settings_are_valid_serving_settings(overlay: str, objects, tmp_path: Path) -> None:
    from churn_mlops.serving.settings import ServingSettings

    objs = objects(f"{overlay}-feature-store")
    for deployment in serving_deployments(objs):
        env = _env(serving_container(deployment))
        churn = {k: v["value"] for k, v in env.items() if k.startswith("CHURN_")}
        values = {**config_of(objs, deployment), **churn}
        settings = ServingSettings(
            model_dir=tmp_path, **{k.removeprefix("CHURN_").lower(): v for k, v in values.items()}
        )
        assert settings.feature_repo == Path("/etc/churn/feature_repo")
        assert settings.feature_store_yaml == "feature_store.yaml"


@pytest.mark.parametrize("overlay", FEATURE_STORE_OVERLAYS)
def test_without_the_component_the_pods_have_no_feature_store(overlay: str, objects) -> None:
    for deployment in serving_deployments(objects(overlay)):
        assert "CHURN_FEATURE_REPO" not in _env(serving_container(deployment))


def test_component_yaml_is_the_redis_repository_with_a_local_registry() -> None:
    """One definition of the Redis repository: the component's file differs from
    feature_repo/feature_store.redis.yaml only in where the registry lies."""
    component = yaml.safe_load((COMPONENT / "feature_store.yaml").read_text())
    project = yaml.safe_load(
        (PROJECT_ROOT / "feature_repo" / "feature_store.redis.yaml").read_text()
    )
    assert component.pop("registry") == "registry.db"
    project.pop("registry")
    assert component == project

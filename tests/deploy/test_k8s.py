"""The kustomize tree of deploy/k8s: schema-valid for Kubernetes and consistent with the app.

Every folder with a kustomization.yaml is built with ``kubectl kustomize`` and validated with
``kubernetes-validate --strict``; the structural tests then read the built objects, so they
check what would reach the cluster, not the source files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import (
    FEATURE_STORE_OVERLAYS,
    K8S_DIR,
    KUSTOMIZE_DIRS,
    PROJECT_ROOT,
    SHARED_LOG_OVERLAYS,
    TOP_LEVEL_DIRS,
    kustomize_build,
)
from tests.deploy.routes import app_routes
from tests.tools import tool, tool_env

# The oldest Kubernetes the manifests support (the native preStop `sleep` action is on by
# default from 1.30) and the newest the validator knows.
MIN_KUBERNETES = "1.30.0"

SERVING_DIRS = ("base", "rolling", "canary", "blue-green")
SERVING_CONTAINER = "serving"
APP_PORT = 8080
JWT_SECRET = "churn-serving-jwt"
TLS_SECRET = "churn-serving-tls"


def latest_kubernetes() -> str:
    from kubernetes_validate.utils import latest_version

    return latest_version()


# --------------------------------------------------------------------------- helpers


def of_kind(objs: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objs if obj["kind"] == kind]


def named(objs: list[dict], kind: str, name: str) -> dict:
    matches = [obj for obj in of_kind(objs, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} named {name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_labels(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return obj["spec"]["template"]["metadata"].get("labels", {})


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def serving_deployments(objs: list[dict]) -> Iterator[dict]:
    for deployment in of_kind(objs, "Deployment"):
        names = [c["name"] for c in pod_spec(deployment)["containers"]]
        if SERVING_CONTAINER in names:
            yield deployment


def serving_container(deployment: dict) -> dict:
    (container,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == SERVING_CONTAINER]
    return container


def config_of(objs: list[dict], deployment: dict) -> dict[str, str]:
    """The environment a serving container gets from its ConfigMaps."""
    env: dict[str, str] = {}
    for source in serving_container(deployment).get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(objs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    return env


# --------------------------------------------------------------------------- schema


def test_every_overlay_is_found() -> None:
    expected = {"base", "rolling", "canary", "blue-green", "jobs/training", "jobs/export"}
    assert expected <= set(KUSTOMIZE_DIRS)


BROKEN = "broken-on-purpose"


@pytest.fixture(scope="session")
def validation_runs(
    rendered: dict[str, str],
    rendered_with_shared_log: dict[str, str],
    rendered_with_feature_store: dict[str, str],
    tmp_path_factory,
) -> dict[str, str]:
    """``kubernetes-validate --strict`` output over every top-level folder, per Kubernetes version.

    One run per version over all files keeps the test fast (the schemas load once). The run
    also gets a copy of the base with a misspelt field, which must fail: proof that the
    validation is strict.
    """
    validator = tool("kubernetes-validate")
    folder = tmp_path_factory.mktemp("rendered")
    texts = {name: rendered[name] for name in TOP_LEVEL_DIRS}
    texts |= rendered_with_shared_log | rendered_with_feature_store
    texts[BROKEN] = rendered["base"].replace("revisionHistoryLimit:", "revisionHistoryLimits:", 1)
    files = []
    for name, text in texts.items():
        path = folder / (name.replace("/", "__") + ".yaml")
        path.write_text(text)
        files.append(str(path))
    outputs = {}
    for version in (MIN_KUBERNETES, latest_kubernetes()):
        proc = subprocess.run(
            [validator, "--strict", "--kubernetes-version", version, *files],
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs[version] = f"{proc.stdout}\n{proc.stderr}"
    return outputs


def validation_lines(output: str, name: str) -> list[str]:
    filename = name.replace("/", "__") + ".yaml"
    return [line for line in output.splitlines() if f"/{filename} " in line]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    TOP_LEVEL_DIRS
    + tuple(f"{o}-shared-log" for o in SHARED_LOG_OVERLAYS)
    + tuple(f"{o}-feature-store" for o in FEATURE_STORE_OVERLAYS),
)
def test_overlay_passes_strict_schema_validation(
    name: str, validation_runs: dict[str, str], objects
) -> None:
    for version, output in validation_runs.items():
        lines = validation_lines(output, name)
        failures = [line for line in lines if "passed" not in line]
        assert not failures, f"{name} fails kubernetes-validate --strict {version}:\n" + "\n".join(
            failures
        )
        # One "passed" line per object: nothing skipped for want of a schema.
        assert len(lines) == len(objects(name)), output


@pytest.mark.slow
def test_strict_validation_rejects_an_unknown_field(validation_runs: dict[str, str]) -> None:
    for output in validation_runs.values():
        failures = [line for line in validation_lines(output, BROKEN) if "passed" not in line]
        assert failures and "revisionHistoryLimits" in failures[0], output


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(KUSTOMIZE_DIRS) - set(TOP_LEVEL_DIRS)))
def test_included_folders_are_validated_through_their_parent(name: str, objects) -> None:
    """A part (canary/stable, blue-green/green, jobs/common...) renders the same objects it
    contributes to a top-level folder, so validating the top level validates it."""

    def key(obj: dict) -> str:
        return yaml.safe_dump(obj, sort_keys=True)

    rendered_tops = {key(obj) for top in TOP_LEVEL_DIRS for obj in objects(top)}
    for obj in objects(name):
        assert key(obj) in rendered_tops, (name, obj["kind"], obj["metadata"]["name"])


# --------------------------------------------------------------------------- serving pods


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_probes_hit_health_routes_of_the_app(name: str, objects) -> None:
    routes = app_routes()
    deployments = list(serving_deployments(objects(name)))
    assert deployments, f"{name} has no serving Deployment"
    for deployment in deployments:
        container = serving_container(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"https": APP_PORT}
        expected = {
            "readinessProbe": "/health/ready",
            "livenessProbe": "/health/live",
            "startupProbe": "/health/live",
        }
        for probe_name, path in expected.items():
            probe = container[probe_name]["httpGet"]
            assert probe["path"] == path, (deployment["metadata"]["name"], probe_name)
            assert ("GET", path) in routes, f"{path} is not a GET route of the app"
            assert probe["port"] in ports
            # The pods serve TLS (CHURN_TLS_* in the ConfigMap), so the kubelet must too.
            assert probe["scheme"] == "HTTPS"
        assert config_of(objects(name), deployment)["CHURN_PORT"] == str(APP_PORT)


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_metrics_scrape_annotations_name_an_app_route(name: str, objects) -> None:
    routes = app_routes()
    for deployment in serving_deployments(objects(name)):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert ("GET", annotations["prometheus.io/path"]) in routes
        assert annotations["prometheus.io/port"] == str(APP_PORT)


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_serving_pods_are_locked_down_and_bounded(name: str, objects) -> None:
    for deployment in serving_deployments(objects(name)):
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        container = serving_container(deployment)
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), kind


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_writable_paths_are_empty_dirs(name: str, objects) -> None:
    """With a read-only root, /tmp and the prediction log directory must be volumes."""
    objs = objects(name)
    for deployment in serving_deployments(objs):
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in serving_container(deployment)["volumeMounts"]}
        log_dir = config_of(objs, deployment)["CHURN_PREDICTION_LOG_DIR"]
        for path in ("/tmp", log_dir):
            assert path in mounts, f"{path} is not mounted"
            assert "emptyDir" in volumes[mounts[path]], f"{path} is not an emptyDir"


@pytest.mark.parametrize("overlay", SHARED_LOG_OVERLAYS)
def test_shared_log_component_puts_the_log_on_the_claim_the_jobs_read(
    overlay: str, objects
) -> None:
    objs = objects(f"{overlay}-shared-log")
    (cron,) = of_kind(objects("jobs/training"), "CronJob")
    cron_volumes = {v["name"]: v for v in pod_spec(cron)["volumes"]}
    (cron_container,) = pod_spec(cron)["containers"]
    cron_mounts = {m["mountPath"]: m["name"] for m in cron_container["volumeMounts"]}
    cron_config = named(
        objects("jobs/training"), "ConfigMap", cron_container["envFrom"][0]["configMapRef"]["name"]
    )["data"]
    log_dir = cron_config["CHURN_PREDICTION_LOG_DIR"]
    cron_claim = cron_volumes[cron_mounts[log_dir]]["persistentVolumeClaim"]["claimName"]
    named(objects("jobs/training"), "PersistentVolumeClaim", cron_claim)

    deployments = list(serving_deployments(objs))
    assert deployments
    for deployment in deployments:
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in serving_container(deployment)["volumeMounts"]}
        serving_dir = config_of(objs, deployment)["CHURN_PREDICTION_LOG_DIR"]
        volume = volumes[mounts[serving_dir]]
        assert "emptyDir" not in volume
        assert volume["persistentVolumeClaim"]["claimName"] == cron_claim
        assert serving_dir == log_dir, "the CronJob reads the folder the app writes"


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_secrets_are_mounted_by_reference_where_the_settings_point(name: str, objects) -> None:
    objs = objects(name)
    assert not of_kind(objs, "Secret"), "a Secret object would put its values in the repo"
    for deployment in serving_deployments(objs):
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        mounts = {m["name"]: m for m in serving_container(deployment)["volumeMounts"]}
        config = config_of(objs, deployment)
        expected_files = {
            JWT_SECRET: [config["CHURN_JWT_KEY_FILE"]],
            TLS_SECRET: [config["CHURN_SSL_CERTFILE"], config["CHURN_SSL_KEYFILE"]],
        }
        for secret_name, files in expected_files.items():
            (volume,) = [
                v for v in volumes.values() if v.get("secret", {}).get("secretName") == secret_name
            ]
            mount = mounts[volume["name"]]
            assert mount["readOnly"] is True
            items = {item["path"] for item in volume["secret"]["items"]}
            for file in files:
                assert Path(file).parent == Path(mount["mountPath"]), file
                assert Path(file).name in items, file


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_rolling_update_never_drops_capacity(name: str, objects) -> None:
    for deployment in serving_deployments(objects(name)):
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0
        assert strategy["rollingUpdate"]["maxSurge"] >= 1
        # The autoscaler owns the replica count; a re-apply must not reset it.
        assert "replicas" not in deployment["spec"]


def app_shutdown_seconds(config: dict[str, str]) -> float:
    """Longest time the real app takes to stop after SIGTERM, read from its code and settings.

    uvicorn first waits for open requests (``timeout_graceful_shutdown`` in
    ``churn_mlops.serving.__main__``), then the app's lifespan shutdown waits for a hot reload
    in progress (``RELOAD_WAIT_ON_SHUTDOWN_S``).
    """
    import inspect

    import churn_mlops.serving.__main__ as entry_point
    from churn_mlops.serving import app as app_module
    from churn_mlops.serving.settings import ServingSettings

    found = re.search(r"timeout_graceful_shutdown\s*=\s*([\w.]+)", inspect.getsource(entry_point))
    assert found, "uvicorn runs without timeout_graceful_shutdown: shutdown is unbounded"
    value = found.group(1)
    if value.startswith("settings."):
        field = value.removeprefix("settings.")
        default = ServingSettings.model_fields[field].default
        graceful = float(config.get(f"CHURN_{field.upper()}", default))
    elif re.fullmatch(r"[\d.]+", value):
        graceful = float(value)
    else:
        graceful = float(getattr(entry_point, value))
    return graceful + float(getattr(app_module, "RELOAD_WAIT_ON_SHUTDOWN_S", 0.0))


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_grace_period_covers_the_drain(name: str, objects) -> None:
    """SIGKILL must come after preStop (endpoints drained) plus the app's graceful shutdown."""
    objs = objects(name)
    for deployment in serving_deployments(objs):
        spec = pod_spec(deployment)
        pre_stop = serving_container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        shutdown = app_shutdown_seconds(config_of(objs, deployment))
        assert pre_stop >= 5, "endpoints need a few seconds to leave the load balancers"
        assert spec["terminationGracePeriodSeconds"] > pre_stop + shutdown, (
            f"grace {spec['terminationGracePeriodSeconds']} s <= preStop {pre_stop} s"
            f" + app shutdown {shutdown} s"
        )


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_config_map_is_valid_serving_settings(name: str, objects, tmp_path: Path) -> None:
    """Every CHURN_ variable the manifests set is a real setting and the set validates."""
    from churn_mlops.serving.settings import ServingSettings

    objs = objects(name)
    for deployment in serving_deployments(objs):
        config = config_of(objs, deployment)
        fields = {f"CHURN_{field.upper()}" for field in ServingSettings.model_fields}
        unknown = sorted(set(config) - fields)
        assert not unknown, f"{unknown} are not settings of the serving app"
        # CHURN_MODEL_DIR comes from the image (the bundle inside it).
        values = {key.removeprefix("CHURN_").lower(): value for key, value in config.items()}
        settings = ServingSettings(**{"model_dir": tmp_path, **values})
        assert settings.tls_enabled and settings.auth_enabled
        assert settings.port == APP_PORT and settings.host == "0.0.0.0"
        assert not settings.jwt_algorithm.startswith("HS"), "pods must hold a public key only"


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_config_maps_and_service_accounts_referenced_exist(name: str, objects) -> None:
    objs = objects(name)
    for deployment in serving_deployments(objs):
        config_of(objs, deployment)  # raises when a referenced ConfigMap is missing
        named(objs, "ServiceAccount", pod_spec(deployment)["serviceAccountName"])


# --------------------------------------------------------------------------- selectors


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_selectors_match_their_pods(name: str, objects) -> None:
    objs = objects(name)
    deployments = list(serving_deployments(objs))
    for deployment in deployments:
        assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(deployment))
    # Each Service and each PodDisruptionBudget picks the pods of exactly one Deployment: two
    # tracks or colours behind one Service would defeat the weights and the switch.
    for kind, selector_of in (
        ("Service", lambda obj: obj["spec"]["selector"]),
        ("PodDisruptionBudget", lambda obj: obj["spec"]["selector"]["matchLabels"]),
    ):
        for obj in of_kind(objs, kind):
            matched = [d for d in deployments if selects(selector_of(obj), pod_labels(d))]
            assert len(matched) == 1, f"{kind} {obj['metadata']['name']} selects {len(matched)}"


@pytest.mark.parametrize("name", SERVING_DIRS)
def test_hpa_targets_a_deployment_of_the_same_release(name: str, objects) -> None:
    objs = objects(name)
    hpas = of_kind(objs, "HorizontalPodAutoscaler")
    assert len(hpas) == len(list(serving_deployments(objs)))
    for hpa in hpas:
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["apiVersion"] == "apps/v1"
        named(objs, "Deployment", target["name"])
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}


@pytest.mark.parametrize("name", ["base", "rolling", "canary", "blue-green"])
def test_main_autoscalers_run_3_to_10_replicas(name: str, objects) -> None:
    for hpa in of_kind(objects(name), "HorizontalPodAutoscaler"):
        if hpa["metadata"]["name"].endswith("-canary"):
            continue  # the canary track is deliberately small
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)


@pytest.mark.parametrize("name", ["rolling", "canary", "blue-green"])
def test_ingress_backends_are_services_of_the_release(name: str, objects) -> None:
    objs = objects(name)
    ingresses = of_kind(objs, "Ingress")
    assert ingresses
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = named(objs, "Service", backend["name"])
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
                assert ("POST", path["path"] + "/predict") in app_routes()


# --------------------------------------------------------------------------- canary


def canary_weights(objs: list[dict]) -> tuple[int, int, int]:
    stable = named(objs, "Ingress", "churn-serving")["metadata"]["annotations"]
    canary = named(objs, "Ingress", "churn-serving-canary")["metadata"]["annotations"]
    assert canary["nginx.ingress.kubernetes.io/canary"] == "true"
    assert "nginx.ingress.kubernetes.io/canary" not in stable
    assert (
        canary["churn-mlops/traffic-weight"] == canary["nginx.ingress.kubernetes.io/canary-weight"]
    )
    return (
        int(stable["churn-mlops/traffic-weight"]),
        int(canary["nginx.ingress.kubernetes.io/canary-weight"]),
        int(canary["nginx.ingress.kubernetes.io/canary-weight-total"]),
    )


def test_canary_weights_default_to_90_10_and_add_up(objects) -> None:
    stable, canary, total = canary_weights(objects("canary"))
    assert (stable, canary) == (90, 10)
    assert stable + canary == total == 100


def test_canary_tracks_route_to_their_own_deployment(objects) -> None:
    objs = objects("canary")
    for ingress_name, track in (("churn-serving", "stable"), ("churn-serving-canary", "canary")):
        ingress = named(objs, "Ingress", ingress_name)
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
        selector = named(objs, "Service", backend)["spec"]["selector"]
        assert selector["churn-mlops/track"] == track
        deployment = named(objs, "Deployment", f"churn-serving-{track}")
        assert selects(selector, pod_labels(deployment))
    # Both Ingresses must claim the same host and path, or nginx does not split them.
    rules = [
        named(objs, "Ingress", n)["spec"]["rules"]
        for n in ("churn-serving", "churn-serving-canary")
    ]
    assert [(r["host"], [p["path"] for p in r["http"]["paths"]]) for r in rules[0]] == [
        (r["host"], [p["path"] for p in r["http"]["paths"]]) for r in rules[1]
    ]


def run_script(script: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", str(script), *args], capture_output=True, text=True, timeout=60, env=tool_env()
    )
    if check:
        assert proc.returncode == 0, f"{script.name} {args} failed:\n{proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture
def k8s_copy(tmp_path: Path, kubectl: str) -> Path:
    """A copy of deploy/k8s for the scripts to edit (overlays still resolve ../../base).

    Depends on ``kubectl`` because the scripts call it (the venv's, first on ``PATH``).
    """
    copy = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, copy)
    return copy


@pytest.mark.parametrize("weight", [0, 25, 50, 100])
def test_set_weight_moves_traffic_and_keeps_the_sum(k8s_copy: Path, weight: int, kubectl: str):
    script = k8s_copy / "canary" / "set-weight.sh"
    run_script(script, "--dir", str(k8s_copy / "canary"), str(weight))
    objs = [d for d in yaml.safe_load_all(kustomize_build(kubectl, k8s_copy / "canary")) if d]
    stable, canary, total = canary_weights(objs)
    assert (stable, canary) == (100 - weight, weight)
    assert stable + canary == total == 100
    status = run_script(script, "--dir", str(k8s_copy / "canary"), "status").stdout
    assert status.strip() == f"stable={100 - weight} canary={weight}"


@pytest.mark.parametrize("bad", ["101", "-5", "ten", "9.5"])
def test_set_weight_refuses_a_bad_weight_and_changes_nothing(k8s_copy: Path, bad: str):
    folder = k8s_copy / "canary"
    before = {p.name: p.read_text() for p in folder.glob("ingress-*.yaml")}
    proc = run_script(folder / "set-weight.sh", "--dir", str(folder), bad, check=False)
    assert proc.returncode == 2
    assert bad in proc.stderr
    assert {p.name: p.read_text() for p in folder.glob("ingress-*.yaml")} == before


# --------------------------------------------------------------------------- blue-green


def live_colour(objs: list[dict]) -> str:
    return named(objs, "Service", "churn-serving")["spec"]["selector"]["churn-mlops/colour"]


def test_blue_green_live_service_selects_one_colour(objects) -> None:
    objs = objects("blue-green")
    assert live_colour(objs) == "blue"
    for colour in ("blue", "green"):
        deployment = named(objs, "Deployment", f"churn-serving-{colour}")
        assert pod_labels(deployment)["churn-mlops/colour"] == colour
        # Each colour also has a preview Service for smoke tests before the switch.
        preview = named(objs, "Service", f"churn-serving-{colour}")
        assert selects(preview["spec"]["selector"], pod_labels(deployment))


def test_switch_script_switches_and_switches_back(k8s_copy: Path, kubectl: str) -> None:
    bg = k8s_copy / "blue-green"
    script, service = bg / "switch.sh", bg / "live" / "service.yaml"

    def colour_after_build() -> str:
        return live_colour([d for d in yaml.safe_load_all(kustomize_build(kubectl, bg)) if d])

    assert run_script(script, "--file", str(service), "status").stdout.strip() == "blue"
    run_script(script, "--file", str(service), "green")
    assert colour_after_build() == "green"
    annotations = yaml.safe_load(service.read_text())["metadata"]["annotations"]
    assert annotations["churn-mlops/previous-colour"] == "blue"

    run_script(script, "--file", str(service), "back")
    assert colour_after_build() == "blue"
    run_script(script, "--file", str(service), "back")
    assert colour_after_build() == "green"

    # Switching to the live colour is a no-op; a dry run prints the change but keeps the file.
    same = run_script(script, "--file", str(service), "green")
    assert "nothing to do" in same.stdout
    before = service.read_text()
    dry = run_script(script, "--file", str(service), "--dry-run", "blue")
    assert "churn-mlops/colour: blue" in dry.stdout
    assert service.read_text() == before


def test_switch_script_refuses_bad_requests(k8s_copy: Path) -> None:
    bg = k8s_copy / "blue-green"
    script, service = bg / "switch.sh", bg / "live" / "service.yaml"
    before = service.read_text()
    never_switched = run_script(script, "--file", str(service), "back", check=False)
    assert never_switched.returncode == 1
    assert "previous-colour" in never_switched.stderr
    unknown = run_script(script, "--file", str(service), "red", check=False)
    assert unknown.returncode == 2 and "'red'" in unknown.stderr
    missing = run_script(script, "--file", str(bg / "nope.yaml"), "green", check=False)
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr
    assert service.read_text() == before


# --------------------------------------------------------------------------- jobs


def test_continuous_training_cronjob(objects) -> None:
    objs = objects("jobs/training")
    (cron,) = of_kind(objs, "CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = pod_spec(cron)["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "churn_mlops.orchestration.continuous_training"]
    # Every option given exists on the real command line interface.
    from churn_mlops.orchestration.continuous_training import continuous_training

    options = {opt for param in continuous_training.params for opt in param.opts}
    given = [arg for arg in command[3:] if arg.startswith("-")]
    assert given and set(given) <= options, (given, options)
    key, value = command[command.index("--params") + 1].split("=")
    assert (key, value) == ("monitoring.window.source", "prediction_log")
    node = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_monitoring.yml").read_text())
    for part in key.split("."):
        node = node[part]  # the overridden parameter exists
    assert pod_spec(cron)["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {"/app/data", "/app/dist", "/tmp"} <= set(mounts)
    named(objs, "PersistentVolumeClaim", "churn-mlops-data")


def test_export_job(objects) -> None:
    objs = objects("jobs/export")
    (job,) = of_kind(objs, "Job")
    (container,) = pod_spec(job)["containers"]
    assert container["command"] == ["kedro", "run", "--pipeline", "export"]
    assert job["spec"]["backoffLimit"] == 0
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/app/dist"]["subPath"] == "dist"


# --------------------------------------------------------------------------- secrets in git

PRIVATE_MATERIAL = re.compile(
    r"-----BEGIN (?:[A-Z ]+ )?(?:PRIVATE KEY|CERTIFICATE)-----|^\s*kind:\s*Secret\s*$",
    re.MULTILINE,
)


def test_no_secret_values_in_the_repository() -> None:
    """Keys, certificates and Secret objects are created in the cluster, never committed."""
    proc = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    offenders = []
    for relative in proc.stdout.splitlines():
        path = PROJECT_ROOT / relative
        if not path.is_file() or path.suffix not in {
            ".yaml",
            ".yml",
            ".json",
            ".env",
            ".pem",
            ".crt",
            ".key",
            ".md",
            ".sh",
            ".txt",
            "",
        }:
            continue
        text = path.read_text(errors="ignore")
        if relative.startswith("docs/"):
            # Docs may show the *commands* that create secrets, but no material.
            text = re.sub(r"^\s*kind:\s*Secret\s*$", "", text, flags=re.MULTILINE)
        if PRIVATE_MATERIAL.search(text):
            offenders.append(relative)
    assert not offenders, f"secret material committed in {offenders}"

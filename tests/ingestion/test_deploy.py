"""The consumer's ops files: alert rules (promtool), Grafana dashboard and k8s Deployment agree
with the metrics and settings of the real consumer."""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest
import yaml
from prometheus_client import generate_latest

from churn_mlops.ingestion.metrics import IngestionMetrics
from churn_mlops.ingestion.settings import IngestionSettings
from tests.deploy.conftest import DEPLOY_DIR, K8S_DIR, kustomize_build, tool
from tests.deploy.promql import exposition_families, metric_names, sample_names

RULES = DEPLOY_DIR / "prometheus" / "ingestion_alerts.yml"
RULE_TESTS = DEPLOY_DIR / "prometheus" / "tests" / "ingestion_alerts_test.yml"
GENERATOR = DEPLOY_DIR / "grafana" / "generate_ingestion.py"
DASHBOARD = DEPLOY_DIR / "grafana" / "churn-ingestion.json"


def exported_series() -> set[str]:
    """Series names the consumer's registry exposes (every metric touched once)."""
    metrics = IngestionMetrics()
    metrics.consumer_lag.labels(topic="t", partition="0").set(1)
    metrics.events_consumed.labels(topic="t").inc()
    metrics.rows_written.labels(table="events").inc()
    metrics.dead_letters.labels(topic="t", rule="json").inc()
    metrics.batch_duration.observe(0.1)
    metrics.last_commit.set_to_current_time()
    metrics.batch_buffered.set(0)
    return sample_names(exposition_families(generate_latest(metrics.registry).decode()))


def alert_rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


@pytest.mark.prometheus
def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = tool("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(alert_rules())} rules found" in check.stdout
    unit = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS.relative_to(RULES.parent))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=RULES.parent,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_every_alert_fires_and_stays_silent_in_a_unit_test_and_has_a_runbook() -> None:
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    for rule in alert_rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), rule["alert"]
        assert any(not case["exp_alerts"] for case in mine), rule["alert"]
        assert (DEPLOY_DIR.parent / rule["annotations"]["runbook"]).is_file()


def test_alerts_and_dashboard_read_only_metrics_the_consumer_exports() -> None:
    exported = exported_series()
    for rule in alert_rules():
        assert metric_names(rule["expr"]) <= exported, rule["expr"]
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert exprs
    for expr in exprs:
        names = metric_names(expr)
        assert names and names <= exported, expr
    # The panels cover what the issue asks ops to watch.
    watched = set().union(*(metric_names(e) for e in exprs))
    assert {
        "churn_ingest_consumer_lag",
        "churn_ingest_rows_written_total",
        "churn_ingest_dead_letters_total",
    } <= watched


def test_committed_dashboard_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("grafana_generate_ingestion", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, f"run python {GENERATOR.relative_to(DEPLOY_DIR.parent)}"


def test_k8s_deployment_runs_the_consumer_with_valid_settings() -> None:
    built = kustomize_build(tool("kubectl"), K8S_DIR / "ingestion")
    objects = [o for o in yaml.safe_load_all(built) if o]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "churn_mlops.ingestion"]
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    secrets = []
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            secrets.append(source["secretRef"])
    # The Secret with the SASL credentials is created by ops, never committed.
    assert [s["name"] for s in secrets] == ["churn-ingestion-kafka"]
    assert not [o for o in objects if o["kind"] == "Secret"]
    ingest = {k: v for k, v in env.items() if k.startswith("CHURN_INGEST_")}
    assert "CHURN_INGEST_SASL_PASSWORD" not in ingest
    values = {"topics": {"events": "e"}, "dead_letter_topic": "d", "landing_dir": "x"}
    values.update({k.removeprefix("CHURN_INGEST_").lower(): v for k, v in ingest.items()})
    settings = IngestionSettings(**values)
    assert settings.security_protocol == "SASL_SSL"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings.metrics_port
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == settings.metrics_port
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(settings.landing_dir).startswith("/app/data") and "/app/data" in mounts
    # SIGTERM lands and commits the open batch: give it time.
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30

"""deploy/prometheus: the scrape config and alert rules pass promtool and their unit tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY_DIR
from tests.deploy.promql import contract_metrics, metric_names, sample_names
from tests.tools import tool

PROMETHEUS_DIR = DEPLOY_DIR / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "alerts_test.yml"

pytestmark = pytest.mark.prometheus


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def without_kubernetes_sd(config: dict, targets_file: Path) -> dict:
    """The same config with Kubernetes pod discovery swapped for a file of targets.

    Debian's prometheus is built without Kubernetes discovery; the rest of the scrape job
    (relabelling, TLS, paths) is kept as is, so it is still what gets checked.
    """
    swapped = yaml.safe_load(yaml.safe_dump(config))
    for job in swapped["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["file_sd_configs"] = [{"files": [str(targets_file)], "refresh_interval": "1s"}]
    return swapped


def kubernetes_sd_supported() -> bool:
    proc = subprocess.run(
        [tool("promtool"), "check", "config", "/dev/stdin"],
        input="scrape_configs:\n  - job_name: probe\n    kubernetes_sd_configs:\n"
        "      - role: pod\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode == 0


def test_scrape_config_passes_promtool(tmp_path: Path) -> None:
    if kubernetes_sd_supported():
        proc = promtool("check", "config", str(CONFIG))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return
    config = without_kubernetes_sd(yaml.safe_load(CONFIG.read_text()), tmp_path / "targets.json")
    (tmp_path / "targets.json").write_text("[]")
    for name in yaml.safe_load(CONFIG.read_text())["rule_files"]:
        (tmp_path / name).write_text((PROMETHEUS_DIR / name).read_text())
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    proc = promtool("check", "config", str(checked), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def scrape_job_keeping(app: str) -> dict:
    """The scrape job that keeps the pods labelled ``app.kubernetes.io/name: <app>``."""
    jobs = yaml.safe_load(CONFIG.read_text())["scrape_configs"]
    for job in jobs:
        for relabel in job.get("relabel_configs", []):
            if (
                relabel.get("action") == "keep"
                and relabel.get("source_labels")
                == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
                and re.fullmatch(relabel["regex"], app)
            ):
                return job
    pytest.fail(f"{CONFIG} has no scrape job keeping the pods of {app} (jobs: {jobs})")


@pytest.mark.parametrize(
    ("deployment", "app"),
    [("base/deployment.yaml", "churn-serving"), ("ingestion/deployment.yaml", "churn-ingestion")],
)
def test_each_scraped_deployment_has_a_job_reading_its_pod_annotations(
    deployment: str, app: str
) -> None:
    from tests.deploy.conftest import K8S_DIR

    template = yaml.safe_load((K8S_DIR / deployment).read_text())["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    job = scrape_job_keeping(app)
    assert job["job_name"] == app
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    sources = {
        label
        for relabel in job["relabel_configs"]
        for label in relabel.get("source_labels", [])
        if label.startswith("__meta_kubernetes_pod_annotation_")
    }
    expected = {
        "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9]", "_", key)
        for key in annotations
        if key.startswith("prometheus.io/")
    }
    assert sources == expected
    # The dashboards and alerts select by namespace.
    targets = {relabel.get("target_label") for relabel in job["relabel_configs"]}
    assert {"namespace", "pod"} <= targets


def test_scrape_config_loads_every_alert_rule_file() -> None:
    rule_files = yaml.safe_load(CONFIG.read_text())["rule_files"]
    assert [CONFIG.parent / name for name in rule_files] == [
        RULES,
        PROMETHEUS_DIR / "ingestion_alerts.yml",
    ]


def test_alert_rules_pass_promtool_check() -> None:
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(rules())} rules found" in proc.stdout


def test_alert_rules_unit_tests_pass() -> None:
    proc = promtool("test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_alert_unit_tests_catch_a_broken_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: a drift threshold raised to 0.5 makes them fail."""
    broken = RULES.read_text().replace(
        "max by (feature) (churn_feature_psi) > 0.2", "max by (feature) (churn_feature_psi) > 0.5"
    )
    assert broken != RULES.read_text()
    (tmp_path / "alerts.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    # Only the drift cases, to keep the run short.
    unit_tests = yaml.safe_load(RULE_TESTS.read_text())
    unit_tests["tests"] = [
        test
        for test in unit_tests["tests"]
        if any(case["alertname"] == "ChurnFeatureDrift" for case in test.get("alert_rule_test", []))
    ]
    (tmp_path / "tests" / "alerts_test.yml").write_text(yaml.safe_dump(unit_tests))
    proc = promtool("test", "rules", "tests/alerts_test.yml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "ChurnFeatureDrift" in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for name in alerts():
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} never fires in a test"
        assert any(not case["exp_alerts"] for case in mine), f"{name} is never tested silent"


def test_required_alerts_exist_with_runbooks() -> None:
    required = {
        "ChurnPredictLatencyP99High",
        "ChurnServingErrorRateHigh",
        "ChurnServingNoTraffic",
        "ChurnFeatureDrift",
        "ChurnPredictionScoreShift",
        "ChurnModelNotReady",
        "ChurnNoModelReady",
    }
    assert required <= set(alerts())
    from tests.deploy.conftest import PROJECT_ROOT

    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert (PROJECT_ROOT / rule["annotations"]["runbook"]).is_file(), name
    # One drift alert per feature: the feature label survives the aggregation.
    assert "by (feature)" in alerts()["ChurnFeatureDrift"]["expr"]


def test_rules_read_only_metrics_the_app_exports() -> None:
    exported = sample_names(contract_metrics())
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names, rule["expr"]
        assert names <= exported | recorded, f"{names - exported - recorded} in {rule['expr']}"


def test_drift_alert_threshold_is_the_monitoring_pipelines() -> None:
    """Live PSI alerts and the monitoring pipeline's verdict use the same PSI threshold."""
    from tests.deploy.conftest import PROJECT_ROOT

    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_monitoring.yml").read_text())
    expected = float(params["monitoring"]["drift"]["statistics"]["psi"]["threshold"])
    threshold = float(re.search(r">\s*([\d.]+)", alerts()["ChurnFeatureDrift"]["expr"]).group(1))
    assert threshold == expected

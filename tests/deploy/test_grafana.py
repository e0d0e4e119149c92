"""deploy/grafana: a generated, well-formed dashboard that reads only metrics the app exports."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY_DIR
from tests.deploy.promql import (
    contract_metrics,
    exposition_families,
    metric_names,
    sample_names,
)

DASHBOARD = DEPLOY_DIR / "grafana" / "churn-serving.json"
GENERATOR = DEPLOY_DIR / "grafana" / "generate.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def targets(dashboard: dict) -> list[tuple[str, dict]]:
    return [
        (panel["title"], target)
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_committed_json_is_what_the_generator_writes() -> None:
    assert load_generator().main(["--check"]) == 0, "run python deploy/grafana/generate.py"


def test_generator_check_notices_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "dashboard.json"
    stale.write_text("{}")
    assert load_generator().main(["--check", "--output", str(stale)]) == 1


def test_dashboard_structure(dashboard: dict) -> None:
    assert dashboard["uid"] == "churn-serving"
    assert dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    for title, target in targets(dashboard):
        assert target["datasource"]["uid"] == "${datasource}", title
        assert 'namespace=~"$namespace"' in target["expr"], title


def test_dashboard_covers_what_ops_watch(dashboard: dict) -> None:
    by_metric: dict[str, list[str]] = {}
    for _title, target in targets(dashboard):
        for name in metric_names(target["expr"]):
            by_metric.setdefault(name, []).append(target["expr"])
    assert "churn_http_requests_total" in by_metric  # traffic and errors
    assert any('status=~"5.."' in e for e in by_metric["churn_http_requests_total"])
    latency = " ".join(by_metric["churn_http_request_duration_seconds_bucket"])
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}," in latency
    assert any("model_version" in e for e in by_metric["churn_model_info"])
    assert any("by (feature)" in e for e in by_metric["churn_feature_psi"])
    assert "churn_prediction_score_bucket" in by_metric  # score distribution


def test_psi_panel_threshold_matches_the_alert(dashboard: dict) -> None:
    rules = yaml.safe_load((DEPLOY_DIR / "prometheus" / "alerts.yml").read_text())
    (drift,) = [
        rule
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "ChurnFeatureDrift"
    ]
    threshold = float(re.search(r">\s*([\d.]+)", drift["expr"]).group(1))
    panel = next(p for p in dashboard["panels"] if p["title"].startswith("Feature drift"))
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": threshold}


def test_every_query_names_a_metric_of_the_contract(dashboard: dict) -> None:
    exported = sample_names(contract_metrics())
    for title, target in targets(dashboard):
        names = metric_names(target["expr"])
        assert names, f"{title}: no metric in {target['expr']}"
        assert names <= exported, f"{title}: {names - exported} not in docs/architecture.md"
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "namespace")
    assert metric_names(variable["definition"]) <= exported


def test_every_query_names_a_metric_the_real_app_exports(
    dashboard: dict, demo_bundle: Path, tmp_path: Path
) -> None:
    """Scrape /metrics of the real app (in-process, model loaded) and compare."""
    from fastapi.testclient import TestClient

    from churn_mlops.serving.app import create_app
    from churn_mlops.serving.settings import ServingSettings

    settings = ServingSettings(
        model_dir=demo_bundle,
        auth_enabled=False,
        prediction_log_dir=tmp_path / "log",
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").status_code == 200
        text = client.get("/metrics").text
    families = exposition_families(text)
    missing = sample_names(contract_metrics()) - sample_names(families)
    assert not missing, f"the app does not export {missing} (docs/architecture.md)"
    exported = sample_names(families)
    for title, target in targets(dashboard):
        names = metric_names(target["expr"])
        assert names <= exported, f"{title}: {names - exported} not exported by the app"

"""Generate the Grafana dashboard of the churn-serving app (deploy/grafana/churn-serving.json).

Usage::

    python deploy/grafana/generate.py            # rewrite churn-serving.json
    python deploy/grafana/generate.py --check    # exit 1 if the JSON is out of date

Every query uses only the metrics the app exports (docs/architecture.md, "Prometheus metrics
exported by the serving app"); tests/deploy/test_grafana.py checks that against the real app.
Import the JSON in Grafana (Dashboards > New > Import) and pick the Prometheus data source.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("churn-serving.json")
DASHBOARD_UID = "churn-serving"
PSI_THRESHOLD = 0.2  # the ChurnFeatureDrift alert's threshold (deploy/prometheus/alerts.yml)
P99_BUDGET_S = 0.1  # the ChurnPredictLatencyP99High alert's threshold

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR = 'namespace=~"$namespace"'
RATE = "$__rate_interval"


def _target(expr: str, legend: str, ref: str, **extra: Any) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend,
        "refId": ref,
        "range": True,
        **extra,
    }


def _panel(
    title: str,
    kind: str,
    targets: list[dict[str, Any]],
    *,
    grid: tuple[int, int, int, int],
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[str, float | None]] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    steps = [{"color": color, "value": value} for color, value in (thresholds or [("green", None)])]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": options or {},
    }


def _row(title: str, y: int) -> dict[str, Any]:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
        "panels": [],
    }


def build_dashboard() -> dict[str, Any]:
    """The dashboard as a dict (Grafana JSON model, schema version 39)."""
    panels: list[dict[str, Any]] = []

    panels.append(_row("Traffic", 0))
    panels.append(
        _panel(
            "Requests per second by route and status",
            "timeseries",
            [
                _target(
                    "sum by (route, status) (rate(churn_http_requests_total"
                    f"{{{SELECTOR}}}[{RATE}]))",
                    "{{route}} {{status}}",
                    "A",
                )
            ],
            grid=(0, 1, 16, 8),
            unit="reqps",
        )
    )
    panels.append(
        _panel(
            "Requests in flight",
            "timeseries",
            [_target(f"sum(churn_http_requests_in_flight{{{SELECTOR}}})", "in flight", "A")],
            grid=(16, 1, 8, 8),
            description="Requests being answered right now, all pods together.",
        )
    )

    panels.append(_row("Latency", 9))
    quantiles = [("p50", 0.5, "A"), ("p90", 0.9, "B"), ("p99", 0.99, "C")]
    for i, route in enumerate(("/v1/predict", "/v1/explain")):
        panels.append(
            _panel(
                f"{route} latency percentiles",
                "timeseries",
                [
                    _target(
                        f"histogram_quantile({q}, sum by (le) (rate("
                        f'churn_http_request_duration_seconds_bucket{{{SELECTOR}, route="{route}"}}'
                        f"[{RATE}])))",
                        name,
                        ref,
                    )
                    for name, q, ref in quantiles
                ],
                grid=(12 * i, 10, 12, 8),
                unit="s",
                thresholds=[("green", None), ("red", P99_BUDGET_S)] if i == 0 else None,
                description="Time spent in the app, from request received to response sent.",
            )
        )

    panels.append(_row("Errors", 18))
    panels.append(
        _panel(
            "Server error ratio (5xx)",
            "timeseries",
            [
                _target(
                    # "or vector(0)": no 5xx series yet means 0 %, not "No data".
                    f'(sum(rate(churn_http_requests_total{{{SELECTOR}, status=~"5.."}}[{RATE}]))'
                    f" or vector(0)) / sum(rate(churn_http_requests_total{{{SELECTOR}}}[{RATE}]))",
                    "5xx ratio",
                    "A",
                )
            ],
            grid=(0, 19, 12, 8),
            unit="percentunit",
            thresholds=[("green", None), ("red", 0.05)],
        )
    )
    panels.append(
        _panel(
            "Client errors by route and status (4xx)",
            "timeseries",
            [
                _target(
                    "sum by (route, status) (rate(churn_http_requests_total"
                    f'{{{SELECTOR}, status=~"4.."}}[{RATE}]))',
                    "{{route}} {{status}}",
                    "A",
                )
            ],
            grid=(12, 19, 12, 8),
            unit="reqps",
            description="Bad input (422), bad or missing token (401/403), too large (413).",
        )
    )

    panels.append(_row("Model", 27))
    panels.append(
        _panel(
            "Model version served",
            "table",
            [
                _target(
                    f"count by (model_name, model_version) (churn_model_info{{{SELECTOR}}})",
                    "{{model_name}} v{{model_version}}",
                    "A",
                    format="table",
                    instant=True,
                    range=False,
                )
            ],
            grid=(0, 28, 8, 8),
            description="Pods per model version: two rows during a rollout, canary or switch.",
        )
    )
    panels.append(
        _panel(
            "Pods with a model ready",
            "stat",
            [_target(f"sum(churn_model_ready{{{SELECTOR}}})", "ready", "A")],
            grid=(8, 28, 4, 8),
            thresholds=[("red", None), ("green", 1)],
        )
    )
    panels.append(
        _panel(
            "Predictions per second by model version and label",
            "timeseries",
            [
                _target(
                    "sum by (model_version, label) (rate(churn_predictions_total"
                    f"{{{SELECTOR}}}[{RATE}]))",
                    "v{{model_version}} label={{label}}",
                    "A",
                )
            ],
            grid=(12, 28, 12, 8),
            unit="reqps",
        )
    )

    panels.append(_row("Drift", 36))
    panels.append(
        _panel(
            "Feature drift (PSI against the training profile)",
            "timeseries",
            [
                _target(
                    f"max by (feature) (churn_feature_psi{{{SELECTOR}}})",
                    "{{feature}}",
                    "A",
                )
            ],
            grid=(0, 37, 16, 9),
            thresholds=[("green", None), ("orange", 0.1), ("red", PSI_THRESHOLD)],
            description=(
                "Population stability index of each feature over the app's sliding window of "
                f"live rows; above {PSI_THRESHOLD} the ChurnFeatureDrift alert fires."
            ),
            options={"legend": {"displayMode": "table", "placement": "right"}},
        )
    )
    panels.append(
        _panel(
            "Current PSI per feature",
            "bargauge",
            [
                _target(
                    f"max by (feature) (churn_feature_psi{{{SELECTOR}}})",
                    "{{feature}}",
                    "A",
                    instant=True,
                    range=False,
                )
            ],
            grid=(16, 37, 8, 9),
            thresholds=[("green", None), ("orange", 0.1), ("red", PSI_THRESHOLD)],
            options={"orientation": "horizontal", "displayMode": "gradient"},
        )
    )

    panels.append(_row("Scores", 46))
    panels.append(
        _panel(
            "Score distribution",
            "heatmap",
            [
                _target(
                    f"sum by (le) (increase(churn_prediction_score_bucket{{{SELECTOR}}}[{RATE}]))",
                    "{{le}}",
                    "A",
                    format="heatmap",
                )
            ],
            grid=(0, 47, 16, 9),
            options={"calculate": False, "yAxis": {"unit": "percentunit"}},
            description="How many predictions fell in each churn-probability bucket.",
        )
    )
    panels.append(
        _panel(
            "Mean score by model version",
            "timeseries",
            [
                _target(
                    "sum by (model_version) (rate(churn_prediction_score_sum"
                    f"{{{SELECTOR}}}[{RATE}]))"
                    " / sum by (model_version) (rate(churn_prediction_score_count"
                    f"{{{SELECTOR}}}[{RATE}]))",
                    "v{{model_version}}",
                    "A",
                )
            ],
            grid=(16, 47, 8, 9),
            unit="percentunit",
            description="A jump here with no feature drift: look at the model version first.",
        )
    )

    for panel_id, panel in enumerate(panels, start=1):
        panel["id"] = panel_id

    return {
        "uid": DASHBOARD_UID,
        "title": "Churn serving",
        "description": "Traffic, latency, errors, model version, drift and scores.",
        "tags": ["churn-mlops", "serving"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(churn_model_info, namespace)",
                        "refId": "namespace",
                    },
                    "definition": "label_values(churn_model_info, namespace)",
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "refresh": 2,
                    "current": {},
                    "hide": 0,
                },
            ]
        },
        "panels": panels,
    }


def render() -> str:
    """The dashboard JSON exactly as it is written to disk."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            sys.stderr.write(f"{args.output} is out of date: run python {__file__}\n")
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

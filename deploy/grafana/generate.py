"""Generate the Grafana dashboard of the churn-serving app (deploy/grafana/churn-serving.json).

Usage::

    python deploy/grafana/generate.py            # rewrite churn-serving.json
    python deploy/grafana/generate.py --check    # exit 1 if the JSON is out of date

Every query uses only the metrics the app exports (docs/architecture.md, "Prometheus metrics
exported by the serving app"); tests/deploy/test_grafana.py checks that against the real app.
Import the JSON in Grafana (Dashboards > New > Import) and pick the Prometheus data source.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from dashboards import RATE, SELECTOR, dashboard, panel, row, target
from dashboards import main as dashboard_main
from dashboards import render as dashboards_render

OUTPUT = Path(__file__).with_name("churn-serving.json")
DASHBOARD_UID = "churn-serving"
PSI_THRESHOLD = 0.2  # the ChurnFeatureDrift alert's threshold (deploy/prometheus/alerts.yml)
P99_BUDGET_S = 0.1  # the ChurnPredictLatencyP99High alert's threshold


def build_dashboard() -> dict[str, Any]:
    """The dashboard as a dict (Grafana JSON model, schema version 39)."""
    panels: list[dict[str, Any]] = []

    panels.append(row("Traffic", 0))
    panels.append(
        panel(
            "Requests per second by route and status",
            "timeseries",
            [
                target(
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
        panel(
            "Requests in flight",
            "timeseries",
            [target(f"sum(churn_http_requests_in_flight{{{SELECTOR}}})", "in flight", "A")],
            grid=(16, 1, 8, 8),
            description="Requests being answered right now, all pods together.",
        )
    )

    panels.append(row("Latency", 9))
    quantiles = [("p50", 0.5, "A"), ("p90", 0.9, "B"), ("p99", 0.99, "C")]
    for i, route in enumerate(("/v1/predict", "/v1/explain")):
        panels.append(
            panel(
                f"{route} latency percentiles",
                "timeseries",
                [
                    target(
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

    panels.append(row("Errors", 18))
    panels.append(
        panel(
            "Server error ratio (5xx)",
            "timeseries",
            [
                target(
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
        panel(
            "Client errors by route and status (4xx)",
            "timeseries",
            [
                target(
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

    panels.append(row("Model", 27))
    panels.append(
        panel(
            "Model version served",
            "table",
            [
                target(
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
        panel(
            "Pods with a model ready",
            "stat",
            [target(f"sum(churn_model_ready{{{SELECTOR}}})", "ready", "A")],
            grid=(8, 28, 4, 8),
            thresholds=[("red", None), ("green", 1)],
        )
    )
    panels.append(
        panel(
            "Predictions per second by model version and label",
            "timeseries",
            [
                target(
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

    panels.append(row("Drift", 36))
    panels.append(
        panel(
            "Feature drift (PSI against the training profile)",
            "timeseries",
            [
                target(
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
        panel(
            "Current PSI per feature",
            "bargauge",
            [
                target(
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

    panels.append(row("Scores", 46))
    panels.append(
        panel(
            "Score distribution",
            "heatmap",
            [
                target(
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
        panel(
            "Mean score by model version",
            "timeseries",
            [
                target(
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

    for panel_id, item in enumerate(panels, start=1):
        item["id"] = panel_id

    return dashboard(
        uid=DASHBOARD_UID,
        title="Churn serving",
        description="Traffic, latency, errors, model version, drift and scores.",
        tags=["churn-mlops", "serving"],
        namespace_metric="churn_model_info",
        panels=panels,
    )


def render() -> str:
    """The dashboard JSON exactly as it is written to disk."""
    return dashboards_render(build_dashboard())


def main(argv: list[str] | None = None) -> int:
    return dashboard_main(
        argv,
        build=build_dashboard,
        output=OUTPUT,
        description=__doc__.splitlines()[0],
        script=__file__,
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""Generate the Grafana dashboard of the Kafka consumer (deploy/grafana/churn-ingestion.json).

Usage::

    python deploy/grafana/generate_ingestion.py            # rewrite churn-ingestion.json
    python deploy/grafana/generate_ingestion.py --check    # exit 1 if the JSON is out of date

Every query reads metrics the consumer exports (churn_mlops/ingestion/metrics.py, listed in
docs/streaming.md); tests/ingestion/test_deploy.py checks that against the real consumer. The
panel helpers and the dashboard frame are shared with the serving dashboard (dashboards.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from dashboards import RATE, SELECTOR, dashboard, panel, row, target
from dashboards import main as dashboard_main
from dashboards import render as dashboards_render

OUTPUT = Path(__file__).with_name("churn-ingestion.json")
DASHBOARD_UID = "churn-ingestion"
LAG_THRESHOLD = 500_000  # the ChurnIngestionLagHigh alert (deploy/prometheus/ingestion_alerts.yml)
DEAD_LETTER_RATIO = 0.01  # the ChurnIngestionDeadLetters alert


def build_dashboard() -> dict[str, Any]:
    """The dashboard as a dict (Grafana JSON model, schema version 39)."""
    panels: list[dict[str, Any]] = [row("Consumer lag and throughput", 0)]
    panels.append(
        panel(
            "Consumer lag by topic",
            "timeseries",
            [target(f"sum by (topic) (churn_ingest_consumer_lag{{{SELECTOR}}})", "{{topic}}", "A")],
            grid=(0, 1, 12, 8),
            thresholds=[("green", None), ("red", LAG_THRESHOLD)],
            description="Messages not landed and committed yet (high watermark - committed).",
        )
    )
    panels.append(
        panel(
            "Rows landed per second by table",
            "timeseries",
            [
                target(
                    f"sum by (table) (rate(churn_ingest_rows_written_total{{{SELECTOR}}}[{RATE}]))",
                    "{{table}}",
                    "A",
                )
            ],
            grid=(12, 1, 12, 8),
            unit="rowsps",
        )
    )
    panels.append(row("Dead letters and batches", 9))
    panels.append(
        panel(
            "Dead-letter ratio by topic",
            "timeseries",
            [
                target(
                    f"sum by (topic) (rate(churn_ingest_dead_letters_total{{{SELECTOR}}}[{RATE}]))"
                    f" / sum by (topic) (rate(churn_ingest_events_consumed_total{{{SELECTOR}}}"
                    f"[{RATE}]))",
                    "{{topic}}",
                    "A",
                )
            ],
            grid=(0, 10, 8, 8),
            unit="percentunit",
            thresholds=[("green", None), ("red", DEAD_LETTER_RATIO)],
            description="Messages refused by the event contract (topic churn.raw.dead_letter).",
        )
    )
    panels.append(
        panel(
            "Dead letters by rule",
            "timeseries",
            [
                target(
                    "sum by (rule) (increase(churn_ingest_dead_letters_total"
                    f"{{{SELECTOR}}}[{RATE}]))",
                    "{{rule}}",
                    "A",
                )
            ],
            grid=(8, 10, 8, 8),
        )
    )
    panels.append(
        panel(
            "Micro-batch time (p50, p99) and seconds since last commit",
            "timeseries",
            [
                target(
                    "histogram_quantile(0.5, sum by (le) (rate("
                    f"churn_ingest_batch_duration_seconds_bucket{{{SELECTOR}}}[{RATE}])))",
                    "batch p50",
                    "A",
                ),
                target(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f"churn_ingest_batch_duration_seconds_bucket{{{SELECTOR}}}[{RATE}])))",
                    "batch p99",
                    "B",
                ),
                target(
                    f"time() - max(churn_ingest_last_commit_timestamp_seconds{{{SELECTOR}}})",
                    "since last commit",
                    "C",
                ),
            ],
            grid=(16, 10, 8, 8),
            unit="s",
            description="Validate, land, fsync and commit one batch; a growing gap = stalled.",
        )
    )
    panels.append(
        panel(
            "Messages in the open batch",
            "timeseries",
            [target(f"sum(churn_ingest_batch_buffered{{{SELECTOR}}})", "buffered", "A")],
            grid=(0, 18, 24, 6),
            description="Read but not landed yet: bounded by batch_max_events.",
        )
    )
    return dashboard(
        uid=DASHBOARD_UID,
        title="Churn ingestion",
        description="Kafka consumer: lag, rows landed, dead letters, micro-batches.",
        tags=["churn-mlops", "ingestion"],
        namespace_metric="churn_ingest_events_consumed_total",
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

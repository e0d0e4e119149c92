"""Generate the Grafana dashboard of the Kafka consumer (deploy/grafana/churn-ingestion.json).

Usage::

    python deploy/grafana/generate_ingestion.py            # rewrite churn-ingestion.json
    python deploy/grafana/generate_ingestion.py --check    # exit 1 if the JSON is out of date

Every query reads metrics the consumer exports (churn_mlops/ingestion/metrics.py, listed in
docs/streaming.md); tests/ingestion/test_deploy.py checks that against the real consumer. The
panel helpers are those of the serving dashboard (generate.py, same folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from generate import DATASOURCE, _panel, _row, _target  # noqa: E402

OUTPUT = Path(__file__).with_name("churn-ingestion.json")
DASHBOARD_UID = "churn-ingestion"
LAG_THRESHOLD = 500_000  # the ChurnIngestionLagHigh alert (deploy/prometheus/ingestion_alerts.yml)
DEAD_LETTER_RATIO = 0.01  # the ChurnIngestionDeadLetters alert
SELECTOR = 'namespace=~"$namespace"'
RATE = "$__rate_interval"


def build_dashboard() -> dict[str, Any]:
    """The dashboard as a dict (Grafana JSON model, schema version 39)."""
    panels: list[dict[str, Any]] = [_row("Consumer lag and throughput", 0)]
    panels.append(
        _panel(
            "Consumer lag by topic",
            "timeseries",
            [
                _target(
                    f"sum by (topic) (churn_ingest_consumer_lag{{{SELECTOR}}})", "{{topic}}", "A"
                )
            ],
            grid=(0, 1, 12, 8),
            thresholds=[("green", None), ("red", LAG_THRESHOLD)],
            description="Messages not landed and committed yet (high watermark - committed).",
        )
    )
    panels.append(
        _panel(
            "Rows landed per second by table",
            "timeseries",
            [
                _target(
                    f"sum by (table) (rate(churn_ingest_rows_written_total{{{SELECTOR}}}[{RATE}]))",
                    "{{table}}",
                    "A",
                )
            ],
            grid=(12, 1, 12, 8),
            unit="rowsps",
        )
    )
    panels.append(_row("Dead letters and batches", 9))
    panels.append(
        _panel(
            "Dead-letter ratio by topic",
            "timeseries",
            [
                _target(
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
        _panel(
            "Dead letters by rule",
            "timeseries",
            [
                _target(
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
        _panel(
            "Micro-batch time (p50, p99) and seconds since last commit",
            "timeseries",
            [
                _target(
                    "histogram_quantile(0.5, sum by (le) (rate("
                    f"churn_ingest_batch_duration_seconds_bucket{{{SELECTOR}}}[{RATE}])))",
                    "batch p50",
                    "A",
                ),
                _target(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f"churn_ingest_batch_duration_seconds_bucket{{{SELECTOR}}}[{RATE}])))",
                    "batch p99",
                    "B",
                ),
                _target(
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
        _panel(
            "Messages in the open batch",
            "timeseries",
            [_target(f"sum(churn_ingest_batch_buffered{{{SELECTOR}}})", "buffered", "A")],
            grid=(0, 18, 24, 6),
            description="Read but not landed yet: bounded by batch_max_events.",
        )
    )
    return {
        "uid": DASHBOARD_UID,
        "title": "Churn ingestion",
        "description": "Kafka consumer: lag, rows landed, dead letters, micro-batches.",
        "tags": ["churn-mlops", "ingestion"],
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
                        "query": "label_values(churn_ingest_events_consumed_total, namespace)",
                        "refId": "namespace",
                    },
                    "definition": "label_values(churn_ingest_events_consumed_total, namespace)",
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

"""Prometheus metrics of the consumer (names listed in docs/streaming.md, alerts in
deploy/prometheus/ingestion_alerts.yml)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestionMetrics:
    """The consumer's metrics, in their own registry (served on ``metrics_port``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.consumer_lag = Gauge(
            "churn_ingest_consumer_lag",
            "Messages in a partition not yet landed and committed (high watermark - committed).",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "churn_ingest_events_consumed",
            "Messages read and committed, valid or not.",
            ["topic"],
            registry=self.registry,
        )
        self.rows_written = Counter(
            "churn_ingest_rows_written",
            "Rows landed in Parquet (committed).",
            ["table"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "churn_ingest_dead_letters",
            "Messages refused by the event contract (dead-letter topic + quarantine file).",
            ["topic", "rule"],
            registry=self.registry,
        )
        self.batch_duration = Histogram(
            "churn_ingest_batch_duration_seconds",
            "Time to validate, land, fsync and commit one micro-batch.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.batch_buffered = Gauge(
            "churn_ingest_batch_buffered",
            "Messages read into the open micro-batch, not landed yet.",
            registry=self.registry,
        )
        self.last_commit = Gauge(
            "churn_ingest_last_commit_timestamp_seconds",
            "Unix time of the last offset commit.",
            registry=self.registry,
        )
        self.online_rows_pushed = Counter(
            "churn_ingest_online_rows_pushed",
            "Customers whose activity features were pushed to the online store.",
            registry=self.registry,
        )
        self.online_push_failures = Counter(
            "churn_ingest_online_push_failures",
            "Committed batches whose online push failed (online rows stay as they were).",
            registry=self.registry,
        )

"""Publishes raw tables (the simulator's, or any in the raw contract) to their topics in time order.

Rows of the three tables are merged on their event time (sign-ups before the activity of the
same instant, churn records last), encoded with the event contract (key = customer id) and sent
at a chosen rate, or as fast as the brokers take them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, Message, Producer

from churn_mlops.ingestion.broker import ensure_topics, wait_for_broker
from churn_mlops.ingestion.contract import encode_rows, event_time_column
from churn_mlops.ingestion.errors import IngestionError
from churn_mlops.ingestion.settings import IngestionSettings
from churn_mlops.pipelines.data_processing.params import TABLES, DataProcessingParams

logger = logging.getLogger(__name__)


def time_order(
    tables: dict[str, pd.DataFrame], params: DataProcessingParams
) -> list[tuple[str, int]]:
    """``(table, row position)`` of every row, ordered by event time (rows without one last).

    Ties keep the order of `TABLES` (customers, events, churn_records), then the row order.
    """
    parts = []
    for rank, table in enumerate(t for t in TABLES if t in tables):
        frame = tables[table]
        column = event_time_column(params.tables[table], table)
        parts.append(
            pd.DataFrame(
                {
                    "time": pd.to_datetime(frame[column]).to_numpy(),
                    "rank": rank,
                    "table": table,
                    "position": np.arange(len(frame)),
                }
            )
        )
    if not parts:
        return []
    order = pd.concat(parts, ignore_index=True).sort_values(
        ["time", "rank", "position"], kind="stable", na_position="last"
    )
    return list(zip(order["table"], order["position"].astype(int), strict=True))


def _ready_topics(settings: IngestionSettings, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Wait for a broker and create the tables' topics and the dead-letter topic if missing.

    Returns:
        The client configuration of the brokers.
    """
    unknown = sorted(set(tables) - set(settings.topics))
    if unknown:
        raise IngestionError(
            f"no topic configured for tables {unknown} (topics: {settings.topics})"
        )
    config = settings.kafka_config()
    admin = wait_for_broker(
        config,
        attempts=settings.connect_attempts,
        backoff_max_seconds=settings.connect_backoff_max_seconds,
    )
    ensure_topics(
        admin,
        [settings.topics[t] for t in tables] + [settings.dead_letter_topic],
        partitions=settings.partitions,
    )
    return config


def _idempotent_producer(config: dict[str, Any]) -> Producer:
    """An exactly-once producer: idempotent, acknowledged by all in-sync replicas."""
    return Producer(
        {
            **config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "logger": logging.getLogger("churn_mlops.ingestion.kafka"),
        }
    )


def _send_in_order(
    producer: Producer,
    messages: Iterator[tuple[str, bytes, bytes]],
    total: int,
    *,
    on_delivery: Callable[[KafkaError | None, Message], None],
    rate: float | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Produce ``(topic, key, value)`` messages in the given order; the caller flushes.

    Waits while the local queue is full; sends ``rate`` messages per second, or as fast as the
    brokers take them when ``rate`` is None.
    """
    started = last_report = time.monotonic()
    for sent, (topic, key, value) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        if rate is not None:
            ahead = (sent + 1) / rate - (time.monotonic() - started)
            if ahead > 0:
                producer.poll(ahead)
        elif sent % 10_000 == 0:
            producer.poll(0)
        now = time.monotonic()
        if progress is not None and now - last_report >= 1.0:
            progress(sent + 1, total)
            last_report = now


def publish_tables(
    settings: IngestionSettings,
    tables: dict[str, pd.DataFrame],
    params: DataProcessingParams,
    *,
    rate: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Send every row of ``tables`` to ``settings.topics`` in time order; returns counts per table.

    Args:
        settings: Brokers, topics and partitions (missing topics are created).
        tables: ``{raw table: frame}`` with the contract's columns.
        params: The raw contract (data_processing parameters).
        rate: Messages per second (None: as fast as possible).
        progress: Called as ``progress(sent, total)`` about once a second.

    Raises:
        BrokerUnavailableError: no broker answered.
        IngestionError: a message was not acknowledged.
    """
    config = _ready_topics(settings, tables)
    encoded = {
        table: list(encode_rows(frame, params.tables[table])) for table, frame in tables.items()
    }
    order = time_order(tables, params)
    failures: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}: {error}")

    producer = _idempotent_producer(config)
    started = time.monotonic()
    _send_in_order(
        producer,
        ((settings.topics[table], *encoded[table][position]) for table, position in order),
        len(order),
        on_delivery=delivered,
        rate=rate,
        progress=progress,
    )
    remaining = producer.flush(60)
    if remaining or failures:
        raise IngestionError(
            f"{remaining + len(failures)} message(s) not acknowledged; first errors: {failures[:3]}"
        )
    counts = {table: len(frame) for table, frame in tables.items()}
    logger.info("published %s in %.2f s to %s", counts, time.monotonic() - started, settings.topics)
    return counts

"""The long-running consumer: Kafka → validated micro-batches → Parquet, exactly once.

Per micro-batch: decode and check every message (contract.py), land the valid rows as Parquet
per table, topic partition and event date, land the refused ones in the quarantine file and
send them to the dead-letter topic, wait for the dead letters to be acknowledged, and only
then commit the offsets. Files are atomically renamed and fsynced first (landing.py).

Exactly once into the raw layer: a consumer killed at any point restarts from the last
committed offset, and when a partition is assigned it first removes the files holding offsets
at or after that commit; so the replayed messages are landed once, whatever the batches.
SIGTERM (and SIGINT) finish the batch being read, land it, commit and leave the group.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from churn_mlops.ingestion.broker import ensure_topics, wait_for_broker
from churn_mlops.ingestion.contract import (
    EventDecoder,
    HardRuleChecker,
    event_time_column,
)
from churn_mlops.ingestion.errors import IngestionError
from churn_mlops.ingestion.landing import Landing, OffsetRange, quarantine_record
from churn_mlops.ingestion.metrics import IngestionMetrics
from churn_mlops.ingestion.push_worker import PushWorker
from churn_mlops.ingestion.settings import IngestionSettings
from churn_mlops.pipelines.data_processing.params import DataProcessingParams

if TYPE_CHECKING:  # Feast, Ibis and the pipelines load only when the push step is on
    from churn_mlops.ingestion.online_push import OnlinePush

logger = logging.getLogger(__name__)

#: Without these, joining a consumer group takes ~23 s with librdkafka's defaults.
GROUP_TIMING: dict[str, int] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}

_IGNORED_ERRORS = frozenset({KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART})
_DELIVERY_TIMEOUT_S = 60.0


class IngestionConsumer:
    """Lands the raw-table topics in the landing area (see the module docstring)."""

    def __init__(
        self,
        settings: IngestionSettings,
        params: DataProcessingParams,
        *,
        metrics: IngestionMetrics | None = None,
        online_push: OnlinePush | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or IngestionMetrics()
        self.online_push = online_push
        self._push_worker: PushWorker | None = None
        self.landing = Landing(settings.landing_dir)
        self._decoders = {
            topic: EventDecoder(table, params.tables[table])
            for table, topic in settings.topics.items()
        }
        self._specs = {table: params.tables[table] for table in settings.topics}
        self._date_columns = {
            table: event_time_column(spec, table) for table, spec in self._specs.items()
        }
        self._checker = HardRuleChecker(params)
        self._stop = threading.Event()
        self._buffer: list[Message] = []
        self._batch_started = 0.0
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self.assigned: set[tuple[str, int]] = set()
        self._at_end: set[tuple[str, int]] = set()

    # ---------------------------------------------------------------------- lifecycle

    def connect(self) -> None:
        """Wait for the brokers (retrying with back-off), make sure the dead-letter topic
        exists and create the clients."""
        config = self.settings.kafka_config()
        admin = wait_for_broker(
            config,
            attempts=self.settings.connect_attempts,
            backoff_max_seconds=self.settings.connect_backoff_max_seconds,
        )
        ensure_topics(admin, [self.settings.dead_letter_topic], partitions=self.settings.partitions)
        kafka_logger = logging.getLogger("churn_mlops.ingestion.kafka")
        self._consumer = Consumer(
            {
                **config,
                **GROUP_TIMING,
                "group.id": self.settings.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # Tells when a partition is read to its end (for idle_exit_seconds).
                "enable.partition.eof": True,
                "logger": kafka_logger,
            }
        )
        self._producer = Producer(
            {**config, "enable.idempotence": True, "acks": "all", "logger": kafka_logger}
        )

    def stop(self) -> None:
        """Ask the loop to land what it holds, commit and leave (what SIGTERM does)."""
        self._stop.set()

    def run(self, *, idle_exit_seconds: float | None = None) -> None:
        """Consume until `stop` (or SIGTERM/SIGINT); with ``idle_exit_seconds``, also stop
        once every assigned partition was read to its end, nothing arrived for that long and
        everything is committed (for batch use)."""
        if self._consumer is None:
            self.connect()
        assert self._consumer is not None
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop())
        topics = sorted(self._decoders)
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        logger.info(
            "consuming %s as group %r into %s",
            topics,
            self.settings.group_id,
            self.settings.landing_dir,
        )
        last_message = time.monotonic()
        try:
            while not self._stop.is_set():
                room = self.settings.batch_max_events - len(self._buffer)
                messages = self._consumer.consume(
                    num_messages=max(1, min(room, 10_000)),
                    timeout=self.settings.poll_timeout_seconds,
                )
                for message in messages:
                    self._take(message)
                self.metrics.batch_buffered.set(len(self._buffer))
                now = time.monotonic()
                if messages:
                    last_message = now
                if self._buffer and (
                    len(self._buffer) >= self.settings.batch_max_events
                    or now - self._batch_started >= self.settings.batch_max_seconds
                ):
                    self.flush()
                if (
                    idle_exit_seconds is not None
                    and not self._buffer
                    and self.assigned
                    and self.assigned <= self._at_end
                    and now - last_message >= idle_exit_seconds
                ):
                    break
            self.flush()
        finally:
            self._consumer.close()
            if self._push_worker is not None:
                self._push_worker.close(timeout=self.settings.push_drain_seconds)
            logger.info("consumer closed")

    # ---------------------------------------------------------------------- rebalancing

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            start = tp.offset
            if start < 0:  # nothing committed yet: reading starts at the earliest offset
                start = consumer.get_watermark_offsets(tp, timeout=10)[0]
            removed = self.landing.discard_uncommitted(tp.topic, tp.partition, start)
            if removed:
                logger.warning(
                    "%s[%d]: removed %d file(s) written after the last commit (offset %d); "
                    "their messages are read again",
                    tp.topic,
                    tp.partition,
                    len(removed),
                    start,
                )
            self.assigned.add((tp.topic, tp.partition))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.flush()
        for tp in partitions:
            self.assigned.discard((tp.topic, tp.partition))
            self._at_end.discard((tp.topic, tp.partition))

    # ---------------------------------------------------------------------- batches

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            self._at_end.add((message.topic(), message.partition()))
            return
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            if error.code() not in _IGNORED_ERRORS:
                logger.warning("consumer error: %s", error)
            return
        self._at_end.discard((message.topic(), message.partition()))
        if not self._buffer:
            self._batch_started = time.monotonic()
        self._buffer.append(message)

    def flush(self) -> int:
        """Land the buffered messages, wait for their dead letters, commit; returns the count."""
        if not self._buffer:
            return 0
        assert self._consumer is not None and self._producer is not None
        started = time.monotonic()
        messages, self._buffer = self._buffer, []
        by_partition: dict[tuple[str, int], list[Message]] = defaultdict(list)
        for message in messages:
            by_partition[(message.topic(), message.partition())].append(message)
        commits = []
        written: dict[str, int] = defaultdict(int)
        refused: dict[tuple[str, str], int] = defaultdict(int)
        landed: dict[str, list[pa.Table]] = defaultdict(list)
        for (topic, partition), batch in sorted(by_partition.items()):
            offsets = OffsetRange(topic, partition, batch[0].offset(), batch[-1].offset())
            table, rows, dead = self._land(offsets, batch)
            written[table] += rows.num_rows
            landed[table].append(rows)
            for record in dead:
                refused[(topic, record["rule"])] += 1
            commits.append(TopicPartition(topic, partition, offsets.last + 1))
        undelivered = self._producer.flush(_DELIVERY_TIMEOUT_S)
        if undelivered:
            raise IngestionError(
                f"{undelivered} dead letter(s) not acknowledged by topic "
                f"{self.settings.dead_letter_topic!r} within {_DELIVERY_TIMEOUT_S:.0f} s; "
                "offsets not committed (the batch is read again after a restart)"
            )
        self._consumer.commit(offsets=commits, asynchronous=False)
        self._record(messages, written, refused, commits, time.monotonic() - started)
        self._push_online(landed)
        return len(messages)

    def _push_online(self, landed: dict[str, list[pa.Table]]) -> None:
        """Hand the batch's customers to the push worker, which refreshes their online
        features on its own thread (push_worker.py) while this loop goes on landing. It runs
        after the commit: the landed files are what exactly-once is about; a failed push
        leaves the batch committed and the online rows as they were (the next push or
        materialization refreshes them)."""
        if self.online_push is None or not landed.get(self.online_push.table):
            return
        if self._push_worker is None:
            self._push_worker = PushWorker(
                self.online_push.refresh,
                on_pushed=self.metrics.online_rows_pushed.inc,
                on_failed=self.metrics.online_push_failures.inc,
            )
        self._push_worker.submit(landed[self.online_push.table])

    def _land(
        self, offsets: OffsetRange, batch: list[Message]
    ) -> tuple[str, pa.Table, list[dict[str, Any]]]:
        decoder = self._decoders[offsets.topic]
        table = decoder.table
        arrow, positions, refused = decoder.decode_batch(
            [m.key() for m in batch], [m.value() for m in batch]
        )
        dead = [(batch[i], exc) for i, exc in refused]
        failures = self._checker.failures(table, arrow)
        if failures:
            dead.extend((batch[positions[i]], exc) for i, exc in failures.items())
            mask = pa.array([i not in failures for i in range(arrow.num_rows)])
            arrow = arrow.filter(mask)
        self.landing.write_rows(table, offsets, arrow, self._date_columns[table])
        dead.sort(key=lambda item: item[0].offset())
        records = [
            quarantine_record(offsets, m.offset(), m.key(), m.value(), exc.rule, exc.reason)
            for m, exc in dead
        ]
        self.landing.write_quarantine(offsets, records)
        for (message, _), record in zip(dead, records, strict=True):
            self._dead_letter(message, record)
        return table, arrow, records

    def _dead_letter(self, message: Message, record: dict[str, Any]) -> None:
        assert self._producer is not None
        headers = {
            "churn.rule": record["rule"],
            "churn.reason": record["reason"],
            "churn.source": f"{record['topic']}/{record['partition']}/{record['offset']}",
        }
        while True:
            try:
                self._producer.produce(
                    self.settings.dead_letter_topic,
                    key=message.key(),
                    value=message.value(),
                    headers=headers,
                )
                return
            except BufferError:
                self._producer.poll(0.1)

    def _record(
        self,
        messages: list[Message],
        written: dict[str, int],
        refused: dict[tuple[str, str], int],
        commits: list[TopicPartition],
        seconds: float,
    ) -> None:
        assert self._consumer is not None
        m = self.metrics
        counts: dict[str, int] = defaultdict(int)
        for message in messages:
            counts[message.topic()] += 1
        for topic, count in counts.items():
            m.events_consumed.labels(topic=topic).inc(count)
        for table, rows in written.items():
            m.rows_written.labels(table=table).inc(rows)
        for (topic, rule), count in refused.items():
            m.dead_letters.labels(topic=topic, rule=rule).inc(count)
        m.batch_duration.observe(seconds)
        m.batch_buffered.set(len(self._buffer))
        m.last_commit.set_to_current_time()
        for tp in commits:
            try:
                # The high watermark that came with the last fetch: no extra round trip.
                high = self._consumer.get_watermark_offsets(tp, cached=True)[1]
            except KafkaException:
                continue
            if high < 0:  # not known yet
                continue
            m.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                max(0, high - tp.offset)
            )
        logger.info(
            "landed %d message(s): rows %s, dead letters %d, in %.3f s",
            len(messages),
            dict(written),
            sum(refused.values()),
            seconds,
        )

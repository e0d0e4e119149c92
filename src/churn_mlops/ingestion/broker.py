"""Reaching the Kafka cluster: wait for a broker with back-off, create missing topics."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from churn_mlops.ingestion.errors import BrokerUnavailableError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
"""How long one attempt waits for the cluster's metadata."""


def wait_for_broker(
    config: dict[str, Any], *, attempts: int, backoff_max_seconds: float
) -> AdminClient:
    """An admin client once a broker answers, retrying with exponential back-off.

    Raises:
        BrokerUnavailableError: no broker answered after ``attempts`` tries; the message names
            the bootstrap servers, the tries, the time spent and the client's last error.
    """
    admin = AdminClient({**config, "logger": logging.getLogger("churn_mlops.ingestion.kafka")})
    started = time.monotonic()
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.5, max=backoff_max_seconds),
            retry=retry_if_exception_type(KafkaException),
            before_sleep=lambda state: logger.warning(
                "no Kafka broker answered at %s (attempt %d of %d: %s); retrying in %.1f s",
                config.get("bootstrap.servers"),
                state.attempt_number,
                attempts,
                state.outcome.exception() if state.outcome else "-",
                state.next_action.sleep if state.next_action else 0.0,
            ),
            reraise=False,
        ):
            with attempt:
                admin.list_topics(timeout=PROBE_TIMEOUT_S)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise BrokerUnavailableError(
            f"no Kafka broker answered at bootstrap.servers={config.get('bootstrap.servers')!r} "
            f"after {attempts} attempts over {time.monotonic() - started:.0f} s "
            f"(last error: {last}); check CHURN_INGEST_BOOTSTRAP_SERVERS and the "
            "security settings (CHURN_INGEST_SECURITY_PROTOCOL, SASL, TLS)"
        ) from None
    return admin


def ensure_topics(admin: AdminClient, names: Iterable[str], *, partitions: int) -> list[str]:
    """Create the topics that do not exist yet; returns those created."""
    existing = set(admin.list_topics(timeout=PROBE_TIMEOUT_S).topics)
    missing = sorted(set(names) - existing)
    if not missing:
        return []
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=-1) for name in missing]
    )
    for future in futures.values():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    logger.info("created topics %s (%d partitions each)", missing, partitions)
    return missing

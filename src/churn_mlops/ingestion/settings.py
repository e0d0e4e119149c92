"""Settings of the consumer and producer: conf (``params:ingestion``), overridden by env vars.

In a cluster every field comes from ``CHURN_INGEST_<FIELD>`` environment variables (a
ConfigMap and a Secret, deploy/k8s/ingestion); locally from
``conf/streaming/parameters_ingestion.yml``. Environment variables win over conf.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from churn_mlops.pipelines.data_processing.params import TABLES


class IngestionSettings(BaseSettings):
    """Where to read, where to land, how big a micro-batch is, and how to reach the brokers.

    Attributes:
        bootstrap_servers: ``host:port[,host:port]`` of the Kafka cluster.
        group_id: Consumer group; its committed offsets are the ingestion's progress.
        topics: ``{raw table: topic}`` for ``customers``, ``events`` and ``churn_records``.
        dead_letter_topic: Where refused messages go (with the reason in headers).
        landing_dir: Root of the landing area (one folder per table, see landing.py).
        batch_max_events: A micro-batch is landed at this many messages...
        batch_max_seconds: ... or this long after its first message, whichever comes first.
        poll_timeout_seconds: Longest wait in one poll for new messages.
        metrics_port: Port of the Prometheus ``/metrics`` endpoint (None: no endpoint).
        connect_attempts: Tries to reach the brokers at start before giving up.
        connect_backoff_max_seconds: Longest wait between two tries (exponential back-off).
        partitions: Partitions per topic when the producer creates a missing topic.
        security_protocol: ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``.
        sasl_mechanism: ``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512`` or ``OAUTHBEARER``.
        sasl_username: SASL user (from a Secret in production).
        sasl_password: SASL password (from a Secret in production).
        ssl_ca_location: CA bundle that signed the brokers' certificates.
        client_config: Any further librdkafka setting (``{"ssl.endpoint.identification.algorithm":
            "https"}``), passed to both clients as is.
        push_online_features: After each committed batch, push the recomputed activity
            features of its customers to the online feature store (online_push.py), on a
            background thread (push_worker.py).
        push_drain_seconds: At shutdown, how long to wait for pushes still queued (keep it
            under the pod's termination grace period minus the last batch's landing).
        feature_repo_path: The Feast feature repository folder (relative: to the project).
        feature_store_yaml: Its configuration file (``feature_store.redis.yaml`` for Redis).
    """

    model_config = SettingsConfigDict(env_prefix="CHURN_INGEST_", extra="forbid", frozen=True)

    bootstrap_servers: str = "localhost:9092"
    group_id: str = "churn-ingestion"
    topics: dict[str, str]
    dead_letter_topic: str
    landing_dir: Path
    batch_max_events: int = Field(default=50_000, ge=1)
    batch_max_seconds: float = Field(default=5.0, gt=0)
    poll_timeout_seconds: float = Field(default=0.5, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    connect_attempts: int = Field(default=10, ge=1)
    connect_backoff_max_seconds: float = Field(default=30.0, gt=0)
    partitions: int = Field(default=3, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    client_config: dict[str, str] = Field(default_factory=dict)
    push_online_features: bool = False
    push_drain_seconds: float = Field(default=30.0, ge=0)
    feature_repo_path: Path = Path("feature_repo")
    feature_store_yaml: str = "feature_store.yaml"

    @model_validator(mode="after")
    def _known_tables(self) -> IngestionSettings:
        unknown = sorted(set(self.topics) - set(TABLES))
        if unknown or not self.topics:
            raise ValueError(
                f"topics must map raw tables {list(TABLES)} to topic names; unknown {unknown}"
            )
        if self.security_protocol.startswith("SASL") and not self.sasl_mechanism:
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_mechanism")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # conf/ values are passed as init arguments; the environment (a pod's ConfigMap and
        # Secret) must win over them.
        return env_settings, init_settings

    def kafka_config(self) -> dict[str, Any]:
        """librdkafka settings shared by the consumer, the producer and the admin client."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        config.update(self.client_config)
        return config

    def table_of_topic(self) -> dict[str, str]:
        """``{topic: raw table}``."""
        return {topic: table for table, topic in self.topics.items()}

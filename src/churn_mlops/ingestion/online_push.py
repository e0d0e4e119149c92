"""Refresh the online feature store from landed events: the consumer's optional push step.

After a micro-batch is landed and its offsets committed, the customers whose events it held get
their activity features recomputed and pushed to the online store (Feast push source), so
online scoring sees them without waiting for the next materialization. Off by default
(``push_online_features``); docs/streaming.md, "Online freshness".

The features are recomputed from the landed raw data, not from the micro-batch alone: each
affected customer's landed events of the look-back (90 days) go through data_processing's
preparation and cleaning (with the landed customers as parents) and feature_engineering's
window expressions, for a snapshot at the batch's newest event time. On the same landed files
that is exactly the row feature_engineering computes for a snapshot at that moment, provided
the landing area holds the customer's whole look-back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from churn_mlops.feature_store.config import FeatureStoreConfig, parse_feature_store_config
from churn_mlops.feature_store.repository import FeatureRepository
from churn_mlops.ingestion.errors import IngestionError
from churn_mlops.ingestion.landing import Landing
from churn_mlops.ingestion.settings import IngestionSettings
from churn_mlops.pipelines.data_processing.nodes import (
    absent_table,
    clean_customers,
    clean_events,
    prepare_customers,
    prepare_events,
)
from churn_mlops.pipelines.data_processing.params import DataProcessingParams
from churn_mlops.pipelines.feature_engineering.nodes import validate_feature_parameters
from churn_mlops.pipelines.feature_engineering.online import (
    event_feature_names,
    event_features_at,
)
from churn_mlops.pipelines.feature_engineering.params import FeatureEngineeringConfig

logger = logging.getLogger(__name__)

EVENTS_TABLE = "events"
"""The raw table whose landed rows trigger a push."""

_AFTER_NEWEST = timedelta(microseconds=1)


class OnlinePushError(IngestionError):
    """The push step is switched on but the feature store configuration cannot support it."""


@dataclass(frozen=True)
class OnlinePush:
    """Recomputes and pushes the activity features of the customers of a landed batch.

    Attributes:
        repository: The Feast feature repository (its online store is written).
        store: Validated ``feature_store`` parameters (push source, join key, timestamp field).
        features: Validated ``feature_engineering`` parameters (the window definitions).
        params: The raw contract (data_processing parameters).
        landing: The landing area the consumer writes.
    """

    repository: FeatureRepository
    store: FeatureStoreConfig
    features: FeatureEngineeringConfig
    params: DataProcessingParams
    landing: Landing

    def __post_init__(self) -> None:
        if not self.store.pushed_views:
            raise OnlinePushError(
                "push_online_features is on, but feature_store.pushed_views is empty: "
                "name the views the consumer may refresh (conf/base/parameters_feature_store.yml)"
            )
        computed = set(event_feature_names(self.features))
        for view in self.store.pushed_views:
            missing = [n for n in self.store.feature_views[view] if n not in computed]
            if missing:
                raise OnlinePushError(
                    f"feature_store.pushed_views: view {view!r} holds {missing}, which are not "
                    f"computed from events alone (those are {sorted(computed)}); push only "
                    "views of event features"
                )

    @property
    def table(self) -> str:
        """The raw table whose landed rows this step reads."""
        return EVENTS_TABLE

    def refresh(self, landed: list[pa.Table]) -> int:
        """Push fresh activity rows for the customers of ``landed`` (raw event rows of a
        committed batch); returns the number of customers pushed."""
        if not landed or not sum(table.num_rows for table in landed):
            return 0
        batch = prepare_events(ibis.memtable(pa.concat_tables(landed)), self.params)
        summary = batch.aggregate(newest=batch.event_time.max()).to_pyarrow().to_pylist()[0]
        if summary["newest"] is None:
            return 0
        ids = sorted(batch.select("customer_id").distinct().to_pyarrow().column(0).to_pylist())
        moment = summary["newest"] + _AFTER_NEWEST
        ids = self._older_online(ids, moment)
        if not ids:
            return 0
        # One day more than the look-back: files are cut by event date, windows by time.
        since = moment.date() - timedelta(days=self.features.lookback_days + 1)
        events, known = self._primary_events(ibis.duckdb.connect(), ids, since)
        if len(known) < len(ids):
            # Their events are quarantined (foreign key), as data_processing would: pushing
            # would overwrite a materialized row with empty windows.
            logger.warning(
                "online push skips %d customer(s) with no landed sign-up", len(ids) - len(known)
            )
            ids = [cid for cid in ids if cid in known]
        if not ids:
            return 0
        rows = event_features_at(events, ids, moment, self.features).to_pandas()
        key, stamp = self.store.join_key, self.store.timestamp_field
        rows = rows.rename(columns={"customer_id": key, "snapshot_date": stamp})
        rows[stamp] = rows[stamp].dt.tz_localize("UTC")
        pushed = self.repository.push(self.store.push_source, rows)
        logger.info("pushed online activity of %d customer(s) as of %s", pushed, moment)
        return pushed

    def _older_online(self, ids: list[int], moment: datetime) -> list[int]:
        """The customers whose online row is older than ``moment`` (or absent): a replay of
        old events never replaces a newer row (SQLite would take it; Redis keeps the newer)."""
        current = self.repository.online_features(ids)
        cutoff = moment.replace(tzinfo=timezone.utc)
        return [
            cid
            for cid, stamp in zip(ids, current.event_times, strict=True)
            if stamp is None or stamp < cutoff
        ]

    def _primary_events(self, con: Any, ids: list[int], since: date) -> tuple[ir.Table, set[int]]:
        """The affected customers' primary events from ``since`` on, as data_processing
        builds them from the landed files, and which of them have a landed sign-up."""
        # Semi-joins, not isin(): an IN list of thousands of ids takes Ibis seconds to compile.
        keys = ibis.memtable({"customer_id": ids}, schema=ibis.schema({"customer_id": "int64"}))
        customers = prepare_customers(self._raw(con, "customers", None), self.params)
        customers = customers.semi_join(keys, "customer_id")
        customers_primary, _ = clean_customers(customers, True, self.params)
        events = prepare_events(self._raw(con, EVENTS_TABLE, since), self.params)
        events = events.semi_join(keys, "customer_id")
        events_primary, _ = clean_events(events, customers_primary, True, self.params)
        known = customers_primary.select("customer_id").to_pyarrow().column(0).to_pylist()
        return events_primary, set(known)

    def _raw(self, con: Any, table: str, since: date | None) -> ir.Table:
        files = self.landing.table_files(table, since=since)
        if not files:
            return absent_table(self.params, table)
        return con.read_parquet(
            [str(path) for path in files], hive_partitioning=False, union_by_name=True
        )


def online_push_from_parameters(
    parameters: dict[str, Any],
    settings: IngestionSettings,
    params: DataProcessingParams,
    project_path: Path,
) -> OnlinePush:
    """The push step of a project: its feature repository and validated parameters.

    Raises:
        OnlinePushError: the feature store configuration cannot support the push.
    """
    features = validate_feature_parameters(
        parameters["feature_engineering"], input_mode=params.input_mode
    )
    store = parse_feature_store_config(
        parameters["feature_store"], parameters["feature_engineering"]["features"]
    )
    repo_path = settings.feature_repo_path
    if not repo_path.is_absolute():
        repo_path = project_path / repo_path
    repository = FeatureRepository(repo_path, fs_yaml_file=settings.feature_store_yaml)
    return OnlinePush(
        repository=repository,
        store=store,
        features=features,
        params=params,
        landing=Landing(settings.landing_dir),
    )

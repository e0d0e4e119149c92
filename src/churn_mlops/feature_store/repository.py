"""The feature repository folder and the Feast SDK calls the project makes on it.

:class:`FeatureRepository` is what the ``feature_store`` catalog entry loads: the Feast
``FeatureStore`` of ``feature_repo/`` plus where the offline source lies relative to it. Its
methods are the only Feast calls of the project: register (apply), materialize, point-in-time
training sets, online reads by customer id and pushes of fresh online rows.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # the serving app imports this module: no Kedro or Ibis at run time
    from churn_mlops.feature_store.definitions import FeatureDefinitions


DEFAULT_YAML = "feature_store.yaml"


class FeatureStoreError(RuntimeError):
    """The feature repository is missing, unreadable or not registered yet."""


@dataclass(frozen=True)
class OnlineFeatures:
    """Online features of some customers, in the order asked.

    Attributes:
        customer_ids: The ids asked for.
        rows: Feature dict per customer, ``None`` for a customer without an online row.
        event_times: UTC time of each customer's online row (its snapshot), ``None`` if absent.
    """

    customer_ids: list[Any]
    rows: list[dict[str, Any] | None]
    event_times: list[datetime | None]

    def __getitem__(self, index: slice) -> OnlineFeatures:
        """The customers ``index`` selects (a batched read hands each request its own)."""
        return OnlineFeatures(
            customer_ids=self.customer_ids[index],
            rows=self.rows[index],
            event_times=self.event_times[index],
        )


@dataclass(frozen=True)
class _OnlineReader:
    """What an online lookup needs, resolved once: the online store and the service's views.

    Attributes:
        store: Feast ``OnlineStore`` of the repository's configuration (holds the connection).
        views: ``(FeatureView, feature names the service projects)`` per view.
        join_key: Entity key column (``customer_id``).
        key_type: Feast ``ValueType`` of the entity key, as registered (INT64 or STRING).
        async_reads: The store implements ``online_read_async`` itself (Redis: yes, SQLite: no).
    """

    store: Any
    views: list[tuple[Any, list[str]]]
    join_key: str
    key_type: Any
    async_reads: bool

    def entity_keys(self, customer_ids: list[Any]) -> list[Any]:
        """Feast's ``EntityKey`` protos of the ids, typed as ``get_online_features`` types them."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.type_map import python_values_to_proto_values

        values = python_values_to_proto_values(list(customer_ids), self.key_type)
        return [EntityKey(join_keys=[self.join_key], entity_values=[v]) for v in values]


def _assemble(
    customer_ids: list[Any],
    views: list[tuple[Any, list[str]]],
    reads: list[Any],
) -> OnlineFeatures:
    """Rows per customer from ``online_read`` answers (one list of ``(time, values)`` per view).

    A customer is present when a view holds its row with a real event time (Redis answers a
    missing key with empty values at time 0); its time is the newest of its views. Values are
    converted as ``get_online_features(...).to_dict()`` converts them.
    """
    from feast.type_map import feast_value_type_to_python_type

    n = len(customer_ids)
    rows: list[dict[str, Any] | None] = [None] * n
    times: list[datetime | None] = [None] * n
    for (_, names), read in zip(views, reads, strict=True):
        for i, (moment, values) in enumerate(read):
            if values is None or moment is None or moment.timestamp() <= 0:
                continue
            row = rows[i]
            if row is None:
                row = rows[i] = {}
            for name in names:
                value = values.get(name)
                row[name] = None if value is None else feast_value_type_to_python_type(value)
            newest = times[i]
            times[i] = moment if newest is None or moment > newest else newest
    return OnlineFeatures(customer_ids=list(customer_ids), rows=rows, event_times=times)


def _open_store(repo_path: Path, fs_yaml_file: str) -> Any:
    import churn_mlops.feature_store.feast_import  # noqa: F401, I001 - before feast (see there)
    from feast import FeatureStore

    yaml_path = repo_path / fs_yaml_file
    if not yaml_path.is_file():
        raise FeatureStoreError(
            f"feature repository configuration {yaml_path} does not exist; expected the "
            f"feature_repo/ folder of the project (docs/feature_store.md)"
        )
    return FeatureStore(repo_path=str(repo_path), fs_yaml_file=yaml_path)


class FeatureRepository:
    """One Feast feature repository folder, opened lazily.

    Args:
        repo_path: The folder holding ``feature_store.yaml``.
        fs_yaml_file: Which configuration in it (``feature_store.redis.yaml`` for Redis).
        offline_source: Path of ``model_input_table`` (absolute, or relative to the working
            directory). It is registered as an absolute path: Feast's DuckDB offline store
            resolves a relative one against the working directory in some calls and against
            the repository in others. Re-running the ``feature_store`` pipeline after moving
            the project registers the new location.
    """

    def __init__(
        self,
        repo_path: str | Path,
        *,
        fs_yaml_file: str = DEFAULT_YAML,
        offline_source: str | Path | None = None,
    ) -> None:
        self.repo_path = Path(repo_path).resolve()
        self.fs_yaml_file = fs_yaml_file
        self.offline_source = Path(offline_source).resolve() if offline_source else None
        self._store: Any = None
        self._service_obj: Any = None
        self._join_key: str | None = None
        self._online_reader: _OnlineReader | None = None

    @property
    def store(self) -> Any:
        """The Feast ``FeatureStore`` (opened on first use)."""
        if self._store is None:
            self._store = _open_store(self.repo_path, self.fs_yaml_file)
        return self._store

    @property
    def source_path(self) -> str:
        """The absolute offline source path (as registered)."""
        if self.offline_source is None:
            raise FeatureStoreError("this feature repository was opened without offline_source")
        return str(self.offline_source)

    @property
    def online_store_type(self) -> str:
        """``sqlite``, ``redis``… as configured."""
        return str(self.store.config.online_store.type)

    # --- registration and materialization -----------------------------------------------
    def apply(self, definitions: FeatureDefinitions) -> dict[str, Any]:
        """Register the definitions; views no longer defined are removed from the registry.

        Returns:
            Names and definition fingerprints of the registered feature views.
        """
        store = self.store
        registered = {fv.name for fv in store.list_feature_views()}
        stale = [
            store.get_feature_view(n) for n in registered - {v.name for v in definitions.views}
        ]
        store.apply(definitions.objects, objects_to_delete=stale, partial=False)
        return self.registration()

    def registration(self) -> dict[str, Any]:
        """Feature service, views (name, fingerprint, Feast version) and online store type.

        The fingerprint is a SHA-256 of the view's specification (schema, TTL, source): it
        changes exactly when the definition changes.

        Raises:
            FeatureStoreError: nothing is registered under the configured service yet.
        """
        store = self.store
        services = store.list_feature_services()
        if not services:
            raise FeatureStoreError(
                f"no feature service is registered in {self.repo_path}; run "
                "`kedro run --pipeline feature_store` first"
            )
        service = services[0]
        views = []
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            spec = view.to_proto().spec
            spec_bytes = spec.SerializeToString(deterministic=True)
            views.append(
                {
                    "name": view.name,
                    "fingerprint": hashlib.sha256(spec_bytes).hexdigest()[:16],
                    "version_number": view.current_version_number,
                    "ttl_seconds": int(view.ttl.total_seconds()) if view.ttl else None,
                    "features": [f.name for f in view.features],
                }
            )
        return {
            "project": store.project,
            "feature_service": service.name,
            "feature_views": views,
            "online_store": self.online_store_type,
        }

    def materialize(self, start: datetime, end: datetime) -> dict[str, Any]:
        """Copy each customer's latest feature row in ``[start, end)`` to the online store."""
        self.store.materialize(start_date=_utc(start), end_date=_utc(end))
        return {"start": _utc(start).isoformat(), "end": _utc(end).isoformat()}

    def push(self, push_source: str, rows: pd.DataFrame) -> int:
        """Write ``rows`` to the online store now, through the Feast push source.

        Args:
            push_source: Name of the registered push source (``feature_store.push_source``).
            rows: The join key, the timestamp field (UTC) and every feature of the views the
                source feeds; each row replaces that customer's online row of those views.

        Returns:
            The number of rows written.
        """
        from feast.data_source import PushMode

        if rows.empty:
            return 0
        self.store.push(push_source, rows, to=PushMode.ONLINE)
        return len(rows)

    # --- reads ----------------------------------------------------------------------------
    def historical_features(self, entities: pd.DataFrame, *, timestamp_field: str) -> pd.DataFrame:
        """Point-in-time feature rows for ``entities`` (keys + ``timestamp_field`` + any other
        columns, kept), through Feast's ``get_historical_features`` on the offline store.

        Returns:
            The entity rows with every feature of the service, in the entity rows' order.
        """
        service = self._service()
        frame = entities.rename(columns={timestamp_field: "event_timestamp"}).reset_index(drop=True)
        frame["__row"] = range(len(frame))
        result = self.store.get_historical_features(entity_df=frame, features=service).to_df()
        result = result.sort_values("__row").drop(columns="__row").reset_index(drop=True)
        # Feast hands the timestamps back as UTC-aware; give the caller its own column back.
        result["event_timestamp"] = entities[timestamp_field].to_numpy()
        return result.rename(columns={"event_timestamp": timestamp_field})

    @property
    def join_key(self) -> str:
        """The entity key column of the registered feature views (``customer_id``)."""
        if self._join_key is None:
            service = self._service()
            view = self.store.get_feature_view(service.feature_view_projections[0].name)
            self._join_key = str(view.entity_columns[0].name)
        return self._join_key

    @property
    def feature_service(self) -> str:
        """Name of the feature service the online reads go through (the registered one)."""
        return str(self._service().name)

    def service_views(self) -> dict[str, list[str]]:
        """View name -> feature names, as the feature service serves them (registry only)."""
        return {
            projection.name: [field.name for field in projection.features]
            for projection in self._service().feature_view_projections
        }

    def warm(self) -> None:
        """Open the store and the registry, resolve the online reader anew, read once.

        A fresh reader means fresh store clients: the serving app calls this at every start,
        so an async Redis client never outlives the event loop it was made on.
        """
        self._online_reader = None
        self.online_features([])

    @property
    def native_async_reads(self) -> bool:
        """Whether the online store reads asynchronously itself (Redis: yes; SQLite: no)."""
        return self._reader().async_reads

    def online_features(self, customer_ids: list[Any]) -> OnlineFeatures:
        """The online feature row of each customer, ``None`` where the store has none.

        Reads each view of the feature service through the online store's ``online_read``
        (Feast's ``OnlineStore`` interface, the call ``get_online_features`` makes inside),
        with the views and the store object resolved once: a one-customer lookup costs about a
        third of ``get_online_features``, which rebuilds the request plan and a response
        proto every call (benchmarks/README.md, "Feature store").
        """
        reader = self._reader()
        if not customer_ids:
            return OnlineFeatures(customer_ids=[], rows=[], event_times=[])
        reads = [reader.store.online_read(*args) for args in self._read_args(customer_ids)]
        return _assemble(customer_ids, reader.views, reads)

    async def online_features_async(self, customer_ids: list[Any]) -> OnlineFeatures:
        """:meth:`online_features` through the store's ``online_read_async``: no thread.

        Only for stores with :attr:`native_async_reads`; the views are read concurrently.
        """
        reader = self._reader()
        if not customer_ids:
            return OnlineFeatures(customer_ids=[], rows=[], event_times=[])
        reads = await asyncio.gather(
            *(reader.store.online_read_async(*args) for args in self._read_args(customer_ids))
        )
        return _assemble(customer_ids, reader.views, list(reads))

    def _read_args(self, customer_ids: list[Any]) -> list[tuple[Any, Any, list[Any], list[str]]]:
        """``(config, view, entity keys, feature names)`` of each view's ``online_read``."""
        reader = self._reader()
        keys = reader.entity_keys(customer_ids)
        # a copy of the names: Redis's online_read appends its timestamp field to the list
        return [(self.store.config, view, keys, list(names)) for view, names in reader.views]

    def _reader(self) -> _OnlineReader:
        if self._online_reader is None:
            from feast.infra.online_stores.helpers import get_online_store_from_config
            from feast.infra.online_stores.online_store import OnlineStore

            store = get_online_store_from_config(self.store.config.online_store)
            views = [
                (self.store.get_feature_view(p.name), [f.name for f in p.features])
                for p in self._service().feature_view_projections
            ]
            self._online_reader = _OnlineReader(
                store=store,
                views=views,
                join_key=self.join_key,
                key_type=views[0][0].entity_columns[0].dtype.to_value_type(),
                async_reads=type(store).online_read_async is not OnlineStore.online_read_async,
            )
        return self._online_reader

    def _service(self) -> Any:
        if self._service_obj is not None:
            return self._service_obj
        services = self.store.list_feature_services()
        if not services:
            raise FeatureStoreError(
                f"no feature service is registered in {self.repo_path}; run "
                "`kedro run --pipeline feature_store` first"
            )
        self._service_obj = services[0]
        return self._service_obj


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def materialization_window(snapshot_dates: pd.Series, ttl_days: int) -> tuple[datetime, datetime]:
    """``[latest snapshot - TTL, latest snapshot + 1 s)``: every row an online lookup can use.

    Older rows are beyond the TTL of any lookup made after the latest snapshot, so they are not
    copied (materializing the whole history would only overwrite them with newer ones).
    """
    latest = pd.Timestamp(snapshot_dates.max()).to_pydatetime()
    return latest - timedelta(days=ttl_days), latest + timedelta(seconds=1)

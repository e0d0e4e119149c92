"""The Feast repository: definitions, point-in-time training sets, online reads, freshness."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import ibis
import pandas as pd
import pytest
from pydantic import ValidationError

from churn_mlops.feature_store.config import parse_feature_store_config
from churn_mlops.pipelines.feature_store import nodes
from tests.feature_store.support import (
    build_repository,
    store_config,
    store_parameters,
    write_table,
)
from tests.pipelines.training.synthetic import feature_list, make_model_input_table

STORES = ["feature_store.yaml", "feature_store.redis.yaml"]


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """120 customers x 5 monthly snapshots, with a few customers absent at some snapshots."""
    full = make_model_input_table(n_customers=120, n_months=5, seed=3)
    # Customer 7 churned before the last snapshot; customer 8 signed up after the first.
    latest = full["snapshot_date"].max()
    first = full["snapshot_date"].min()
    drop = ((full.customer_id == 7) & (full.snapshot_date == latest)) | (
        (full.customer_id == 8) & (full.snapshot_date == first)
    )
    return full.loc[~drop].reset_index(drop=True)


def _store(request: pytest.FixtureRequest, name: str) -> str:
    if "redis" in name:
        request.getfixturevalue("redis_env")
    return name


@pytest.fixture(params=STORES)
def fs_yaml(request: pytest.FixtureRequest) -> str:
    """Each online store: SQLite (default) and Redis (a real server)."""
    return _store(request, request.param)


def test_training_set_equals_model_input_table_row_for_row(tmp_path: Path, table: pd.DataFrame):
    repository = build_repository(tmp_path, table)
    config = store_config()
    registration = repository.registration()
    keys = table[["customer_id", "snapshot_date", "churned"]]
    spine = ibis.memtable(keys.sample(frac=1, random_state=0))

    training_set = nodes.build_training_set(repository, registration, spine, config)

    expected = table.sort_values(["customer_id", "snapshot_date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(training_set, expected, check_exact=True)


def test_point_in_time_lookup_between_snapshots_uses_the_earlier_row(
    tmp_path: Path, table: pd.DataFrame
):
    repository = build_repository(tmp_path, table)
    dates = sorted(table.snapshot_date.unique())
    mid = pd.Timestamp(dates[1]) + timedelta(days=10)  # after snapshot 2, before snapshot 3
    entities = pd.DataFrame({"customer_id": [1, 2], "snapshot_date": [mid, mid]})

    frame = repository.historical_features(entities, timestamp_field="snapshot_date")

    at_snapshot = table[table.snapshot_date == dates[1]].set_index("customer_id")
    for cid in (1, 2):
        row = frame[frame.customer_id == cid].iloc[0]
        assert row["sessions_30d"] == at_snapshot.loc[cid, "sessions_30d"]
        assert row["region"] == at_snapshot.loc[cid, "region"]


def test_feature_views_carry_the_feature_list_descriptions_and_the_ttl(tmp_path: Path, table):
    repository = build_repository(tmp_path, table)
    descriptions = {f["name"]: f["description"] for f in feature_list()}
    views = {v.name: v for v in repository.store.list_feature_views()}

    assert set(views) == set(store_parameters()["feature_views"])
    for view in views.values():
        assert view.ttl == timedelta(days=store_parameters()["ttl_days"])
        for field in view.features:
            assert field.description == descriptions[field.name]
    registration = repository.registration()
    assert registration["online_store"] == "sqlite"
    assert sorted(f for v in registration["feature_views"] for f in v["features"]) == sorted(
        descriptions
    )


def test_a_changed_definition_changes_the_view_fingerprint(tmp_path: Path, table):
    repository = build_repository(tmp_path, table)
    before = {v["name"]: v["fingerprint"] for v in repository.registration()["feature_views"]}
    params = {**store_parameters(), "ttl_days": 90}
    config = parse_feature_store_config(params, feature_list())
    nodes.register_feature_views(repository, nodes.define_feature_views(table, config, repository))

    after = {v["name"]: v["fingerprint"] for v in repository.registration()["feature_views"]}
    assert set(before) == set(after)
    assert all(before[name] != after[name] for name in before)


def test_online_store_holds_each_customers_latest_row(
    tmp_path: Path, table: pd.DataFrame, fs_yaml: str
):
    repository = build_repository(tmp_path, table, fs_yaml_file=fs_yaml)
    latest = table.sort_values("snapshot_date").groupby("customer_id").tail(1)
    ids = [1, 7, 8, 999_999]  # 7's latest row is one snapshot older; 999999 does not exist

    online = repository.online_features(ids)

    assert online.rows[3] is None and online.event_times[3] is None
    by_id = latest.set_index("customer_id")
    names = [f["name"] for f in feature_list()]
    for i, cid in enumerate(ids[:3]):
        expected = by_id.loc[cid]
        assert online.event_times[i] == pd.Timestamp(expected.snapshot_date).tz_localize("UTC")
        assert online.rows[i] == {name: expected[name] for name in names}


def test_online_reads_equal_feasts_get_online_features(
    tmp_path: Path, table: pd.DataFrame, fs_yaml: str
):
    """The direct ``online_read`` path answers what Feast's public API answers, value for value."""
    repository = build_repository(tmp_path, table, fs_yaml_file=fs_yaml)
    ids = [3, 1, 7, 8, 999_999, 3]  # a repeated id and an unknown one

    online = repository.online_features(ids)

    feast_rows = repository.store.get_online_features(
        features=repository.store.get_feature_service(repository.feature_service),
        entity_rows=[{"customer_id": cid} for cid in ids],
    ).to_dict()
    names = [f["name"] for f in feature_list()]
    for i in range(len(ids)):
        if ids[i] == 999_999:
            assert online.rows[i] is None
            continue
        assert online.rows[i] == {name: feast_rows[name][i] for name in names}


def test_redis_is_read_asynchronously_and_sqlite_is_not(
    tmp_path: Path, table: pd.DataFrame, fs_yaml: str
):
    repository = build_repository(tmp_path, table, fs_yaml_file=fs_yaml)
    ids = [1, 7, 999_999]

    assert repository.native_async_reads is ("redis" in fs_yaml)
    if repository.native_async_reads:
        assert asyncio.run(repository.online_features_async(ids)) == repository.online_features(ids)


def test_events_changed_after_materialization_show_only_after_the_next_one(
    tmp_path: Path, table: pd.DataFrame, fs_yaml: str
):
    repository = build_repository(tmp_path, table, fs_yaml_file=fs_yaml)
    latest = table.snapshot_date.max()
    before = repository.online_features([5])
    # New events: next month's snapshot for customer 5 has seven more support tickets.
    new_row = table[(table.customer_id == 5) & (table.snapshot_date == latest)].copy()
    new_row["snapshot_date"] = latest + pd.DateOffset(months=1)
    new_row["support_tickets_30d"] += 7
    changed = pd.concat([table, new_row], ignore_index=True)
    write_table(tmp_path, changed)

    stale = repository.online_features([5])
    assert stale.rows[0] == before.rows[0]  # the online store still serves what was copied
    assert stale.event_times[0] == before.event_times[0]
    offline = repository.historical_features(
        new_row[["customer_id", "snapshot_date"]], timestamp_field="snapshot_date"
    )
    assert offline.support_tickets_30d.iloc[0] == before.rows[0]["support_tickets_30d"] + 7

    config = store_config()
    nodes.materialize_online_features(repository, repository.registration(), changed, config)
    fresh = repository.online_features([5])
    assert fresh.rows[0]["support_tickets_30d"] == before.rows[0]["support_tickets_30d"] + 7
    assert fresh.event_times[0] == pd.Timestamp(new_row.snapshot_date.iloc[0]).tz_localize("UTC")
    assert fresh.event_times[0] > before.event_times[0]


def test_parameters_must_place_every_feature_in_exactly_one_view():
    params = store_parameters()
    views = {name: list(features) for name, features in params["feature_views"].items()}
    moved = views["customer_activity"].pop()
    with pytest.raises(ValidationError, match=f"features \\['{moved}'\\] .* are in no view"):
        parse_feature_store_config({**params, "feature_views": views}, feature_list())
    views["customer_activity"] += [moved, "tenure_days"]
    with pytest.raises(ValidationError, match="'tenure_days' is in both"):
        parse_feature_store_config({**params, "feature_views": views}, feature_list())
    views["customer_activity"] = [*views["customer_activity"][:-1], "mystery_score"]
    with pytest.raises(ValidationError, match="mystery_score"):
        parse_feature_store_config({**params, "feature_views": views}, feature_list())


def test_missing_source_column_is_named(tmp_path: Path, table: pd.DataFrame):
    from churn_mlops.feature_store.definitions import (
        FeatureDefinitionError,
        build_feature_definitions,
    )

    dtypes = table.drop(columns="usage_trend").dtypes.to_dict()
    with pytest.raises(FeatureDefinitionError, match="lacks columns \\['usage_trend'\\]"):
        build_feature_definitions(store_config(), dtypes, str(tmp_path / "t.parquet"))


def test_pushed_rows_serve_at_once_and_what_a_materialization_does_to_them(
    tmp_path: Path, table: pd.DataFrame, fs_yaml: str
):
    """docs/streaming.md, "Online freshness": a push is served without materialization; the
    next materialization writes the snapshot row back in SQLite, Redis keeps the newer row."""
    repository = build_repository(tmp_path, table, fs_yaml_file=fs_yaml)
    config = store_config()
    activity = list(config.feature_views["customer_activity"])
    latest = table[table.customer_id == 5].sort_values("snapshot_date").tail(1)
    pushed = latest[["customer_id", "snapshot_date", *activity]].copy()
    pushed["snapshot_date"] = (pushed["snapshot_date"] + timedelta(days=10)).dt.tz_localize("UTC")
    pushed["sessions_30d"] += 5

    assert repository.push(config.push_source, pushed) == 1

    fresh = repository.online_features([5])
    assert fresh.rows[0]["sessions_30d"] == latest.sessions_30d.iloc[0] + 5
    assert fresh.event_times[0] == pushed.snapshot_date.iloc[0]
    nodes.materialize_online_features(repository, repository.registration(), table, config)
    after = repository.online_features([5]).rows[0]["sessions_30d"]
    kept = "redis" in fs_yaml
    assert after == latest.sessions_30d.iloc[0] + (5 if kept else 0)

"""The consumer's optional push step against a real broker (Tansu) and a real Feast SQLite
online store: fresh activity features online without a materialization run."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from churn_mlops.feature_store.repository import FeatureRepository
from churn_mlops.ingestion.cli import load_project_config
from churn_mlops.ingestion.consumer import IngestionConsumer
from churn_mlops.ingestion.landing import Landing
from churn_mlops.ingestion.online_push import (
    OnlinePush,
    OnlinePushError,
    online_push_from_parameters,
)
from churn_mlops.ingestion.producer import publish_tables
from churn_mlops.ingestion.settings import IngestionSettings
from tests.feature_store.support import build_repository, store_config
from tests.ingestion.conftest import PROJECT_ROOT, Broker
from tests.pipelines.data_processing.conftest import valid_frames
from tests.pipelines.training.synthetic import make_model_input_table

pytestmark = [pytest.mark.timeout(300), pytest.mark.kafka]  # a real broker (Tansu)

CUSTOMER = 3
OTHER = 4
NEWEST = pd.Timestamp("2023-06-20 09:00")
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def parameters() -> dict:
    """The `streaming` environment's parameters (feature_engineering, feature_store...)."""
    _, _, loader = load_project_config(PROJECT_ROOT, "streaming")
    return loader["parameters"]


def activity_tables() -> dict[str, pd.DataFrame]:
    """The sign-up of CUSTOMER and four of their events in June 2023 (raw contract)."""
    customers = valid_frames()["customers"].iloc[[0]].assign(customer_id=CUSTOMER)
    events = pd.DataFrame(
        {
            "customer_id": pd.array([CUSTOMER] * 4, dtype="int64"),
            "event_time": pd.to_datetime(
                ["2023-06-18 09:00", "2023-06-19 09:00", "2023-06-19 15:00", "2023-06-20 09:00"]
            ),
            "event_type": ["session", "session", "support_ticket", "session"],
            "amount": [None, None, None, None],
            "duration_minutes": [10.0, 20.0, None, 30.0],
        }
    ).astype({"amount": "float64", "duration_minutes": "float64"})
    return {"customers": customers, "events": events}


def consume(settings: IngestionSettings, params, push: OnlinePush | None) -> IngestionConsumer:
    consumer = IngestionConsumer(settings, params, online_push=push)
    thread = threading.Thread(target=consumer.run, kwargs={"idle_exit_seconds": 2.0})
    thread.start()
    thread.join(timeout=RUN_TIMEOUT_S)
    assert not thread.is_alive(), "consumer did not stop"
    return consumer


def pushing(
    make_settings, broker: Broker, root: Path
) -> tuple[FeatureRepository, IngestionSettings]:
    """A registered, materialized repository of 20 customers and settings that push to it."""
    table = make_model_input_table(n_customers=20, n_months=3, seed=5, start="2023-04-01")
    repository = build_repository(root, table)
    settings = make_settings(
        broker.bootstrap, push_online_features=True, feature_repo_path=repository.repo_path
    )
    return repository, settings


def test_push_is_off_unless_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    settings, _, _ = load_project_config(PROJECT_ROOT, "streaming")
    assert settings.push_online_features is False
    monkeypatch.setenv("CHURN_INGEST_PUSH_ONLINE_FEATURES", "true")
    assert load_project_config(PROJECT_ROOT, "streaming")[0].push_online_features is True


def test_published_events_refresh_the_customers_online_row_without_materialization(
    broker: Broker, make_settings, project_config, parameters, tmp_path: Path
) -> None:
    _, params = project_config
    repository, settings = pushing(make_settings, broker, tmp_path / "project")
    before = repository.online_features([CUSTOMER, OTHER])
    push = online_push_from_parameters(parameters, settings, params, PROJECT_ROOT)

    publish_tables(settings, activity_tables(), params)
    consumer = consume(settings, params, push)

    after = FeatureRepository(repository.repo_path).online_features([CUSTOMER, OTHER])
    row = after.rows[0]
    assert row is not None and before.rows[0] is not None
    # The activity view is recomputed from the landed events, as of the newest one.
    assert after.event_times[0] == NEWEST.tz_localize("UTC")
    expected = {
        "sessions_30d": 3,
        "sessions_90d": 3,
        "session_minutes_30d": 60.0,
        "usage_trend": 3.0,
        "days_since_last_session": 0,
        "support_tickets_30d": 1,
        "support_tickets_90d": 1,
        "late_payments_90d": 0,
        "payments_90d": 0,
        "online_purchases_90d": 0,
        "online_spend_90d": 0.0,
    }
    assert {name: row[name] for name in expected} == expected
    assert {name: before.rows[0][name] for name in expected} != expected
    # The profile view keeps its materialized values; other customers are untouched.
    profile = store_config().feature_views["customer_profile"]
    assert {n: row[n] for n in profile} == {n: before.rows[0][n] for n in profile}
    assert after.rows[1] == before.rows[1] and after.event_times[1] == before.event_times[1]
    assert consumer.metrics.online_rows_pushed._value.get() == 1
    assert consumer.metrics.online_push_failures._value.get() == 0

    # A replay of older activity never replaces the newer online row, and a customer
    # without a landed sign-up (their events fail the foreign key) is not pushed either.
    events = activity_tables()["events"]
    late = events.iloc[[0]].assign(event_time=NEWEST - pd.Timedelta(days=9))
    unknown = late.assign(customer_id=OTHER)  # newer than OTHER's materialized row
    publish_tables(settings, {"events": pd.concat([late, unknown])}, params)
    replay = consume(settings, params, push)
    assert replay.metrics.rows_written.labels(table="events")._value.get() == 2
    assert replay.metrics.online_rows_pushed._value.get() == 0
    again = FeatureRepository(repository.repo_path).online_features([CUSTOMER, OTHER])
    assert again.rows[0] == row and again.event_times[0] == after.event_times[0]
    assert again.rows[1] == before.rows[1] and again.event_times[1] == before.event_times[1]


def test_a_failed_push_leaves_the_batch_landed_and_committed(
    broker: Broker, make_settings, project_config, parameters, tmp_path: Path
) -> None:
    _, params = project_config
    # No feature repository there: the push fails after the commit.
    settings = make_settings(broker.bootstrap, feature_repo_path=tmp_path / "missing")
    push = online_push_from_parameters(parameters, settings, params, PROJECT_ROOT)
    publish_tables(settings, activity_tables(), params)

    consumer = consume(settings, params, push)

    assert consumer.metrics.online_push_failures._value.get() >= 1
    assert consumer.metrics.online_rows_pushed._value.get() == 0
    assert consumer.metrics.rows_written.labels(table="events")._value.get() == 4
    assert len(Landing(settings.landing_dir).table_files("events")) >= 1
    # Committed: a second consumer of the same group finds nothing left to read.
    again = consume(settings, params, None)
    assert again.metrics.rows_written.labels(table="events")._value.get() == 0


def test_only_views_of_event_features_can_be_pushed(parameters, project_config) -> None:
    _, params = project_config
    settings = IngestionSettings(
        topics={"events": "t"}, dead_letter_topic="d", landing_dir=Path("unused")
    )
    changed = {**parameters, "feature_store": {**parameters["feature_store"]}}
    changed["feature_store"]["pushed_views"] = ["customer_profile"]
    with pytest.raises(OnlinePushError, match="customer_profile.*tenure_days"):
        online_push_from_parameters(changed, settings, params, PROJECT_ROOT)
    changed["feature_store"]["pushed_views"] = []
    with pytest.raises(OnlinePushError, match="pushed_views is empty"):
        online_push_from_parameters(changed, settings, params, PROJECT_ROOT)


def test_a_slow_push_does_not_hold_up_landing_and_commits(
    broker: Broker, make_settings, project_config, parameters, tmp_path: Path
) -> None:
    """While a push is stuck, the consume loop goes on landing and committing new batches."""
    _, params = project_config
    repository, settings = pushing(make_settings, broker, tmp_path / "project")
    real = online_push_from_parameters(parameters, settings, params, PROJECT_ROOT)
    entered, release = threading.Event(), threading.Event()
    pushed_rows: list[int] = []

    class HeldPush(OnlinePush):
        """The real push, held at its start until the test lets it go."""

        def refresh(self, landed):  # type: ignore[no-untyped-def]
            pushed_rows.append(sum(t.num_rows for t in landed))
            entered.set()
            assert release.wait(RUN_TIMEOUT_S), "the test never released the push"
            return super().refresh(landed)

    push = HeldPush(**{f.name: getattr(real, f.name) for f in dataclasses.fields(real)})
    tables = activity_tables()
    events = tables["events"]
    publish_tables(settings, {"customers": tables["customers"], "events": events.iloc[:2]}, params)
    consumer = IngestionConsumer(settings, params, online_push=push)
    thread = threading.Thread(target=consumer.run)
    thread.start()
    try:
        assert entered.wait(RUN_TIMEOUT_S), "the first batch was never handed to the push"
        written = consumer.metrics.rows_written.labels(table="events")
        assert written._value.get() == 2

        publish_tables(settings, {"events": events.iloc[2:]}, params)
        deadline = time.monotonic() + 30  # a batch lands in about a second
        while written._value.get() < 4 and time.monotonic() < deadline:
            time.sleep(0.05)

        # rows_written counts after the commit: the second batch was landed and committed
        # while the first push was still held.
        assert written._value.get() == 4
        assert pushed_rows == [2] and not release.is_set()
    finally:
        release.set()
        consumer.stop()
        thread.join(timeout=RUN_TIMEOUT_S)
    assert not thread.is_alive(), "consumer did not stop"
    # At shutdown the worker pushed the batch that waited; the newest event is online.
    assert pushed_rows == [2, 2]
    after = FeatureRepository(repository.repo_path).online_features([CUSTOMER])
    assert after.event_times[0] == NEWEST.tz_localize("UTC")
    assert consumer.metrics.online_push_failures._value.get() == 0

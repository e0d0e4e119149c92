"""Leakage test: events at or after a snapshot never change that snapshot's features.

Property style: for several seeds, random events at or after a random snapshot are deleted,
retyped, re-valued, moved later or added (some exactly at the snapshot), and the snapshot's
feature rows must stay identical. Control cases show the same comparison does detect changes
(later snapshots change; an event one second before the snapshot changes it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn_mlops.pipelines.feature_engineering.nodes import (
    aggregate_event_windows,
    assemble_model_input,
    build_snapshot_calendar,
    build_snapshot_spine,
    check_model_input,
)
from churn_mlops.pipelines.feature_engineering.params import FeatureEngineeringConfig
from tests.pipelines.feature_engineering.conftest import (
    CHURN_SCHEMA,
    CUSTOMER_SCHEMA,
    EVENT_SCHEMA,
    as_table,
    churn_frame,
    customers_frame,
    make_config,
)

PERIOD_START = pd.Timestamp("2023-01-01")
PERIOD_END = pd.Timestamp("2024-01-01")
EVENT_TYPES = np.array(["session", "support_ticket", "payment", "late_payment", "online_purchase"])
N_CUSTOMERS = 40
N_EVENTS = 3000
SEEDS = range(8)


def random_events(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp):
    seconds = rng.integers(0, int((end - start).total_seconds()), n)
    types = rng.choice(EVENT_TYPES, n)
    values = np.round(rng.gamma(2.0, 10.0, n), 2)
    return pd.DataFrame(
        {
            "customer_id": rng.integers(1, N_CUSTOMERS + 1, n).astype("int64"),
            "event_time": start + pd.to_timedelta(seconds, unit="s"),
            "event_type": types,
            "amount": np.where(types == "session", np.nan, values),
            "duration_minutes": np.where(types == "session", values, np.nan),
        }
    )


@pytest.fixture(scope="module")
def config() -> FeatureEngineeringConfig:
    # A fixed period: the calendar must not move when events after a snapshot change.
    return make_config(period_start="2023-01-01", period_end="2024-01-01")


@pytest.fixture(scope="module")
def base_tables():
    rng = np.random.default_rng(2024)
    signup = PERIOD_START + pd.to_timedelta(rng.integers(-400, 200, N_CUSTOMERS), unit="D")
    customers = customers_frame(
        [
            {"customer_id": i + 1, "signup_date": signup[i], "age": int(rng.integers(18, 80))}
            for i in range(N_CUSTOMERS)
        ]
    )
    churners = rng.choice(np.arange(1, N_CUSTOMERS + 1), 10, replace=False)
    churn_days = rng.integers(120, 360, len(churners))
    churn = churn_frame(
        [
            (int(c), str(PERIOD_START + pd.Timedelta(days=int(d))))
            for c, d in zip(churners, churn_days, strict=True)
        ]
    )
    events = random_events(rng, N_EVENTS, PERIOD_START, PERIOD_END)
    return customers, events, churn


def features(customers, events, churn, config) -> pd.DataFrame:
    customers_t = as_table(customers, CUSTOMER_SCHEMA)
    events_t = as_table(events, EVENT_SCHEMA)
    calendar = build_snapshot_calendar(events_t, config)
    spine = build_snapshot_spine(customers_t, as_table(churn, CHURN_SCHEMA), calendar)
    windows = aggregate_event_windows(events_t, calendar, config)
    table = check_model_input(assemble_model_input(spine, customers_t, windows, config), config)
    return table.execute().sort_values(["snapshot_date", "customer_id"]).reset_index(drop=True)


def at(frame: pd.DataFrame, snapshot: pd.Timestamp, columns: list[str]) -> pd.DataFrame:
    return frame.loc[frame.snapshot_date == snapshot, ["customer_id", *columns]].reset_index(
        drop=True
    )


def mutate_at_or_after(
    events: pd.DataFrame, snapshot: pd.Timestamp, rng: np.random.Generator
) -> pd.DataFrame:
    """Delete, retype, re-value and move events at or after ``snapshot``, and add new ones."""
    late = events.event_time >= snapshot
    frame = events.copy()
    index = frame.index[late]
    deleted = rng.choice(index, len(index) // 4, replace=False)
    frame = frame.drop(deleted)
    index = frame.index[frame.event_time >= snapshot]
    changed = rng.choice(index, len(index) // 3, replace=False)
    frame.loc[changed, "event_type"] = rng.choice(EVENT_TYPES, len(changed))
    frame.loc[changed, "amount"] = rng.gamma(2.0, 50.0, len(changed))
    frame.loc[changed, "duration_minutes"] = rng.gamma(2.0, 50.0, len(changed))
    moved = rng.choice(index, len(index) // 3, replace=False)
    frame.loc[moved, "event_time"] += pd.to_timedelta(rng.integers(0, 40 * 86400, len(moved)), "s")
    added = random_events(rng, 400, snapshot, PERIOD_END + pd.Timedelta(days=60))
    # Events exactly at the snapshot instant, for every customer and type.
    exact = added.head(len(EVENT_TYPES) * 2).assign(
        event_time=snapshot, event_type=np.tile(EVENT_TYPES, 2)
    )
    return pd.concat([frame, added, exact], ignore_index=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_events_at_or_after_a_snapshot_never_change_its_features(seed, base_tables, config):
    customers, events, churn = base_tables
    rng = np.random.default_rng(seed)
    before = features(customers, events, churn, config)
    snapshots = sorted(before.snapshot_date.unique())
    snapshot = pd.Timestamp(snapshots[rng.integers(0, len(snapshots) - 1)])  # never the last
    mutated = mutate_at_or_after(events, snapshot, rng)
    after = features(customers, mutated, churn, config)

    # Every snapshot up to and including the mutated one is unchanged, label included.
    columns = ["churned", *config.feature_names]
    for earlier in (s for s in snapshots if s <= snapshot):
        pd.testing.assert_frame_equal(at(before, earlier, columns), at(after, earlier, columns))
    # Control: the mutation was real and does show up in the next snapshot.
    following = pd.Timestamp(snapshots[snapshots.index(snapshot) + 1])
    assert not at(before, following, columns).equals(at(after, following, columns))


def test_an_event_one_second_before_the_snapshot_does_change_it(base_tables, config):
    customers, events, churn = base_tables
    snapshot = pd.Timestamp("2023-07-01")
    before = features(customers, events, churn, config)
    extra = events.head(1).assign(
        customer_id=1, event_time=snapshot - pd.Timedelta(seconds=1), event_type="support_ticket"
    )
    after = features(customers, pd.concat([events, extra], ignore_index=True), churn, config)
    got_before = at(before, snapshot, ["support_tickets_30d"]).set_index("customer_id")
    got_after = at(after, snapshot, ["support_tickets_30d"]).set_index("customer_id")
    assert 1 in got_before.index, "fixture changed: customer 1 should be active at 2023-07-01"
    tickets_before = got_before.loc[1, "support_tickets_30d"]
    assert got_after.loc[1, "support_tickets_30d"] == tickets_before + 1

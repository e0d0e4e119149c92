"""Event features at any moment (the online push) equal model_input_table's at its snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn_mlops.pipelines.feature_engineering.online import event_feature_names, event_features_at
from tests.pipelines.feature_engineering import test_leakage as leakage
from tests.pipelines.feature_engineering.conftest import EVENT_SCHEMA, as_table, events_frame
from tests.pipelines.feature_engineering.test_leakage import N_CUSTOMERS, at, features

# The leakage test's random tables and fixed period, as fixtures of this module too.
base_tables = leakage.base_tables
config = leakage.config


def test_features_at_a_snapshot_equal_model_input_table_for_every_customer(
    base_tables, config
) -> None:
    customers, events, churn = base_tables
    table = features(customers, events, churn, config)
    names = event_feature_names(config)
    ids = list(range(1, N_CUSTOMERS + 1))
    for snapshot in table.snapshot_date.drop_duplicates().iloc[[0, -1]]:
        online = event_features_at(
            as_table(events, EVENT_SCHEMA), ids, snapshot.to_pydatetime(), config
        ).execute()
        expected = at(table, snapshot, names)
        # model_input_table has a row only for customers active at the snapshot.
        online = online[online.customer_id.isin(expected.customer_id)].reset_index(drop=True)
        assert len(online) == len(expected) > 0
        pd.testing.assert_frame_equal(online[["customer_id", *names]], expected, check_dtype=False)


def test_any_moment_counts_the_events_strictly_before_it_in_each_window(config) -> None:
    moment = pd.Timestamp("2023-06-17 12:00:00")
    events = events_frame(
        [
            (7, "2023-06-17 11:59:59", "session", 10.0),  # counts (1 s before)
            (7, "2023-06-17 12:00:00", "session", 99.0),  # at the moment: does not count
            (7, "2023-06-01 09:00:00", "session", 5.0),  # 30-day window, same month
            (7, "2023-04-01 09:00:00", "session", 1.0),  # 90-day window only
            (7, "2023-06-10 00:00:00", "online_purchase", 12.5),
            (8, "2023-01-01 00:00:00", "session", 3.0),  # beyond every window
        ]
    )
    online = event_features_at(
        as_table(events, EVENT_SCHEMA), [7, 8, 9], moment.to_pydatetime(), config
    ).execute()
    rows = online.set_index("customer_id")
    assert rows.loc[7, "sessions_30d"] == 2
    assert rows.loc[7, "sessions_90d"] == 3
    assert rows.loc[7, "session_minutes_30d"] == 15.0
    assert rows.loc[7, "online_spend_90d"] == 12.5
    assert rows.loc[7, "days_since_last_session"] == 0
    assert rows.loc[7, "usage_trend"] == (2 * 90) / (3 * 30)
    cap = config.recency.cap_days
    for empty in (8, 9):  # events too old, or none: zero windows and the capped recency
        assert rows.loc[empty, "sessions_90d"] == 0
        assert rows.loc[empty, "days_since_last_session"] == cap
    assert (online.snapshot_date == moment).all()
    assert np.isfinite(online["usage_trend"]).all()

"""Node tests of feature_engineering on tiny hand-built tables with hand-computed values."""

from __future__ import annotations

from datetime import datetime

import ibis
import pandas as pd
import pytest
from ibis.config import Config

from churn_mlops.contracts.features import parse_feature_list
from churn_mlops.pipelines.feature_engineering.nodes import (
    FeatureInputError,
    FeatureListError,
    FeatureParameterError,
    SnapshotCalendarError,
    aggregate_event_windows,
    assemble_model_input,
    build_snapshot_calendar,
    build_snapshot_spine,
    check_model_input,
    validate_feature_parameters,
)
from churn_mlops.pipelines.feature_engineering.params import FeatureEngineeringConfig
from tests.pipelines.feature_engineering.conftest import (
    CHURN_SCHEMA,
    CUSTOMER_SCHEMA,
    EVENT_SCHEMA,
    as_table,
    churn_frame,
    customers_frame,
    events_frame,
    feature_parameters,
    make_config,
)

# Explicit period for the hand-computed cases: snapshots 2023-04-01 … 2023-07-01.
PERIOD = {"period_start": "2023-01-01", "period_end": "2023-08-01"}
SNAPSHOT = pd.Timestamp("2023-06-01")  # S - 30 days = 2023-05-02, S - 90 days = 2023-03-03


def run_features(customers, events, churn, config: FeatureEngineeringConfig) -> pd.DataFrame:
    """All nodes in pipeline order on pandas frames; returns the checked model input."""
    customers_t = as_table(customers, CUSTOMER_SCHEMA)
    events_t = as_table(events, EVENT_SCHEMA)
    calendar = build_snapshot_calendar(events_t, config)
    spine = build_snapshot_spine(customers_t, as_table(churn, CHURN_SCHEMA), calendar)
    windows = aggregate_event_windows(events_t, calendar, config)
    table = check_model_input(assemble_model_input(spine, customers_t, windows, config), config)
    return table.execute().sort_values(["snapshot_date", "customer_id"]).reset_index(drop=True)


def row(frame: pd.DataFrame, customer_id: int, snapshot: pd.Timestamp) -> dict:
    selected = frame[(frame.customer_id == customer_id) & (frame.snapshot_date == snapshot)]
    assert len(selected) == 1, f"expected one row for customer {customer_id} at {snapshot}"
    return selected.iloc[0].to_dict()


# --------------------------------------------------------------------------- parameters


def test_committed_parameters_validate_and_list_the_contract_features():
    # The contract is read from the configuration, never pinned here: adding a feature by the
    # recipe of docs/features.md touches conf/ only.
    raw = feature_parameters()
    config = validate_feature_parameters(raw)
    assert config.feature_names == [feature["name"] for feature in raw["features"]]
    assert len(set(config.feature_names)) == len(config.feature_names)
    declared = {aggregate["name"] for aggregate in raw["window_aggregates"]}
    declared |= set(raw["customer_attributes"])
    assert declared <= set(config.feature_names), "every computed column is in the contract"
    assert config.lookback_days >= max(a["window_days"] for a in raw["window_aggregates"])
    contract = next(spec for spec in config.features if spec.name == "contract")
    assert contract.categories == ["month_to_month", "one_year", "two_year"]


def test_unknown_parameter_key_is_rejected_with_its_name():
    params = feature_parameters()
    params["snapshots"]["label_horizon"] = 30
    with pytest.raises(FeatureParameterError, match="label_horizon"):
        validate_feature_parameters(params)


def test_usage_trend_must_reference_a_count_aggregate():
    params = feature_parameters()
    params["usage_trend"]["long"] = "online_spend_90d"
    with pytest.raises(FeatureParameterError, match="online_spend_90d"):
        validate_feature_parameters(params)


def test_feature_list_rejects_categorical_without_categories():
    with pytest.raises(ValueError, match="region"):
        parse_feature_list([{"name": "region", "kind": "categorical", "description": "x"}])


# --------------------------------------------------------------------------- calendar


def _snapshot_dates(events, config) -> list[datetime]:
    calendar = build_snapshot_calendar(as_table(events, EVENT_SCHEMA), config).execute()
    return [ts.to_pydatetime() for ts in calendar.snapshot_date]


def test_calendar_derives_period_from_events_and_keeps_full_history_and_horizon():
    # Events from 2023-01-01 to 2023-12-31 -> period [2023-01-01, 2024-01-01).
    events = events_frame(
        [(1, "2023-01-01 08:00", "session", 5.0), (1, "2023-12-31 22:00", "session", 5.0)]
    )
    dates = _snapshot_dates(events, make_config())
    # First: 3 months of history (and 2023-04-01 - 90 days = 2023-01-01, inside the period).
    # Last: 2023-12-01 + 30 days = 2023-12-31 <= 2024-01-01; 2024-01-01 + 30 days is not.
    assert dates[0] == datetime(2023, 4, 1)
    assert dates[-1] == datetime(2023, 12, 1)
    assert len(dates) == 9


def test_calendar_moves_first_snapshot_when_lookback_needs_more_than_history_months():
    # history_months=3 from 2023-02-01 gives 2023-05-01, but 2023-05-01 - 90 days = 2023-01-31
    # is before the period start, so the first complete snapshot is 2023-06-01.
    config = make_config(period_start="2023-02-01", period_end="2024-01-01")
    dates = _snapshot_dates(events_frame([]), config)
    assert dates[0] == datetime(2023, 6, 1)


def test_calendar_label_horizon_decides_the_last_snapshot():
    config = make_config(period_start="2023-01-01", period_end="2023-08-01", label_horizon_days=32)
    # 2023-07-01 + 32 days = 2023-08-02 > period end, so the last snapshot is 2023-06-01.
    assert _snapshot_dates(events_frame([]), config)[-1] == datetime(2023, 6, 1)


def test_calendar_fails_when_period_holds_no_snapshot():
    config = make_config(period_start="2023-01-01", period_end="2023-04-15")
    with pytest.raises(SnapshotCalendarError, match=r"2023-01-01, 2023-04-15"):
        build_snapshot_calendar(as_table(events_frame([]), EVENT_SCHEMA), config)


def test_calendar_fails_on_empty_events_without_explicit_period():
    with pytest.raises(SnapshotCalendarError, match="empty"):
        build_snapshot_calendar(as_table(events_frame([]), EVENT_SCHEMA), make_config())


def test_missing_and_mistyped_event_columns_are_named():
    events = ibis.memtable(
        {"customer_id": [1], "event_time": ["2023-01-01"], "event_type": ["session"]}
    )
    with pytest.raises(FeatureInputError) as raised:
        build_snapshot_calendar(events, make_config(**PERIOD))
    message = str(raised.value)
    assert "events_primary" in message
    assert "'event_time' has type string" in message
    assert "'amount' is missing" in message
    assert "'duration_minutes' is missing" in message


# --------------------------------------------------------------------------- spine and label


def test_spine_activity_rules_and_label():
    customers = customers_frame(
        [
            {"customer_id": 1, "signup_date": "2023-06-01"},  # signs up on a snapshot day
            {"customer_id": 2, "signup_date": "2023-05-31"},
            {"customer_id": 3},  # churns 2023-05-15
            {"customer_id": 4},  # churns on the snapshot day 2023-06-01
            {"customer_id": 5},  # churns 2023-05-31: outside [05-01, 05-31) (30-day horizon)
            {"customer_id": 6},  # churns 2023-05-30: inside [05-01, 05-31)
            {"customer_id": 7},  # never churns
        ]
    )
    churn = churn_frame(
        [(3, "2023-05-15"), (4, "2023-06-01"), (5, "2023-05-31"), (6, "2023-05-30")]
    )
    config = make_config(**PERIOD)
    calendar = build_snapshot_calendar(as_table(events_frame([]), EVENT_SCHEMA), config)
    spine = build_snapshot_spine(
        as_table(customers, CUSTOMER_SCHEMA), as_table(churn, CHURN_SCHEMA), calendar
    ).execute()
    got = {
        (int(r.customer_id), r.snapshot_date.strftime("%m-%d")): int(r.churned)
        for r in spine.itertuples()
    }
    expected = {
        (1, "07-01"): 0,
        (2, "06-01"): 0, (2, "07-01"): 0,
        (3, "04-01"): 0, (3, "05-01"): 1,
        (4, "04-01"): 0, (4, "05-01"): 0, (4, "06-01"): 1,
        (5, "04-01"): 0, (5, "05-01"): 0,
        (6, "04-01"): 0, (6, "05-01"): 1,
        (7, "04-01"): 0, (7, "05-01"): 0, (7, "06-01"): 0, (7, "07-01"): 0,
    }  # fmt: skip
    assert got == expected
    assert list(spine.columns) == ["customer_id", "snapshot_date", "churned"]


def test_longer_label_horizon_catches_end_of_month_churn():
    customers = customers_frame([{"customer_id": 5}])
    churn = churn_frame([(5, "2023-05-31")])
    config = make_config(**PERIOD, label_horizon_days=31)
    calendar = build_snapshot_calendar(as_table(events_frame([]), EVENT_SCHEMA), config)
    spine = build_snapshot_spine(
        as_table(customers, CUSTOMER_SCHEMA), as_table(churn, CHURN_SCHEMA), calendar
    ).execute()
    may = spine[spine.snapshot_date == pd.Timestamp("2023-05-01")]
    assert may.churned.tolist() == [1]


# --------------------------------------------------------------------------- window features

HAND_EVENTS = [
    # customer 1: every window boundary around SNAPSHOT = 2023-06-01
    (1, "2023-06-01 00:00:00", "session", 99.0),  # exactly at the snapshot: excluded
    (1, "2023-05-20 12:00:00", "session", 15.0),  # in 30d and 90d
    (1, "2023-05-02 00:00:00", "session", 10.0),  # exactly snapshot - 30 days: in 30d
    (1, "2023-05-01 23:59:59", "session", 20.0),  # one second earlier: 90d only
    (1, "2023-03-03 00:00:00", "session", 5.0),  # exactly snapshot - 90 days: in 90d
    (1, "2023-03-02 23:59:59", "session", 7.0),  # one second earlier: out
    (1, "2023-05-31 23:59:59", "support_ticket", None),
    (1, "2023-04-10 09:00:00", "support_ticket", None),
    (1, "2023-04-01 00:00:00", "late_payment", 30.0),
    (1, "2023-05-15 00:00:00", "payment", 50.0),
    (1, "2023-05-20 10:00:00", "online_purchase", 12.5),
    (1, "2023-03-10 10:00:00", "online_purchase", 7.5),
    (1, "2023-06-15 10:00:00", "online_purchase", 1000.0),  # after the snapshot
    # customer 3: last session 100 days before the snapshot (beyond the 90-day cap)
    (3, "2023-02-21 10:00:00", "session", 30.0),
    # customer 4: last session the evening before the snapshot
    (4, "2023-05-31 23:00:00", "session", 3.0),
]


@pytest.fixture(scope="module")
def hand_features() -> pd.DataFrame:
    customers = customers_frame(
        [
            {"customer_id": 1, "signup_date": "2022-01-01", "paperless_billing": True},
            {"customer_id": 2, "signup_date": "2023-02-15", "paperless_billing": False},
            {"customer_id": 3},
            {"customer_id": 4, "contract": "two_year", "age": 61, "monthly_fee": 99.99},
        ]
    )
    return run_features(
        customers, events_frame(HAND_EVENTS), churn_frame([]), make_config(**PERIOD)
    )


def test_window_counts_sums_and_boundaries(hand_features):
    got = row(hand_features, 1, SNAPSHOT)
    assert got["sessions_30d"] == 2  # 05-20, 05-02 00:00
    assert got["sessions_90d"] == 4  # + 05-01 23:59:59, 03-03 00:00
    assert got["session_minutes_30d"] == pytest.approx(25.0)
    assert got["support_tickets_30d"] == 1
    assert got["support_tickets_90d"] == 2
    assert got["late_payments_90d"] == 1
    assert got["payments_90d"] == 1
    assert got["online_purchases_90d"] == 2
    assert got["online_spend_90d"] == pytest.approx(20.0)


def test_usage_trend_and_recency(hand_features):
    got = row(hand_features, 1, SNAPSHOT)
    assert got["usage_trend"] == pytest.approx((2 / 30) / (4 / 90))
    assert got["days_since_last_session"] == 12  # 2023-05-20 -> 2023-06-01
    assert row(hand_features, 4, SNAPSHOT)["days_since_last_session"] == 1


def test_usage_trend_of_all_sessions_in_the_short_window_is_exactly_its_declared_maximum(
    hand_features,
):
    # Every session in the last 30 days: the trend is 90/30 = 3 exactly. Computed as
    # (13/30)/(13/90) it would be 3.0000000000000004, which the serving schema (max 3) refuses.
    assert row(hand_features, 4, SNAPSHOT)["usage_trend"] == 3.0
    events = events_frame(
        [(5, f"2023-05-{day:02d} 12:00:00", "session", 10.0) for day in range(10, 23)]
    )
    features = run_features(
        customers_frame([{"customer_id": 5}]), events, churn_frame([]), make_config(**PERIOD)
    )
    assert row(features, 5, SNAPSHOT)["sessions_30d"] == 13
    assert row(features, 5, SNAPSHOT)["usage_trend"] == 3.0
    # 100 days ago is beyond the cap: capped, and no session counted in any window.
    far = row(hand_features, 3, SNAPSHOT)
    assert far["days_since_last_session"] == 90
    assert far["sessions_90d"] == 0


def test_event_exactly_at_snapshot_counts_for_the_next_snapshot(hand_features):
    july = row(hand_features, 1, pd.Timestamp("2023-07-01"))
    assert july["sessions_30d"] == 1  # the 2023-06-01 00:00 session, 30 days before 07-01
    assert july["session_minutes_30d"] == pytest.approx(99.0)
    assert july["online_spend_90d"] == pytest.approx(1012.5)


def test_customers_without_events_are_zero_filled(hand_features):
    got = row(hand_features, 2, SNAPSHOT)
    for name in (
        "sessions_30d", "sessions_90d", "session_minutes_30d", "support_tickets_30d",
        "support_tickets_90d", "late_payments_90d", "payments_90d", "online_purchases_90d",
        "online_spend_90d", "usage_trend",
    ):  # fmt: skip
        assert got[name] == 0, name
    assert got["days_since_last_session"] == 90
    assert not hand_features.isna().any().any()


def test_customer_attributes_as_of_snapshot(hand_features):
    got = row(hand_features, 2, SNAPSHOT)
    assert got["tenure_days"] == 106  # 2023-02-15 -> 2023-06-01
    assert got["paperless_billing"] == 0
    assert row(hand_features, 1, SNAPSHOT)["tenure_days"] == 516  # 2022-01-01 -> 2023-06-01
    assert row(hand_features, 1, SNAPSHOT)["paperless_billing"] == 1
    four = row(hand_features, 4, SNAPSHOT)
    assert (four["contract"], four["age"], four["monthly_fee"]) == ("two_year", 61, 99.99)


def test_output_columns_and_types_follow_the_contract(hand_features):
    config = make_config(**PERIOD)
    assert list(hand_features.columns) == [
        "customer_id",
        "snapshot_date",
        "churned",
        *config.feature_names,
    ]
    assert str(hand_features.churned.dtype) == "int64"
    assert str(hand_features.sessions_30d.dtype) == "int64"
    assert str(hand_features.online_spend_90d.dtype) == "float64"
    assert pd.api.types.is_datetime64_any_dtype(hand_features.snapshot_date)
    assert (hand_features.snapshot_date.dt.day == 1).all()


# --------------------------------------------------------------------------- feature list check


def _assembled(config: FeatureEngineeringConfig):
    customers = as_table(customers_frame([{"customer_id": 1}]), CUSTOMER_SCHEMA)
    events = as_table(events_frame(HAND_EVENTS), EVENT_SCHEMA)
    calendar = build_snapshot_calendar(events, config)
    spine = build_snapshot_spine(customers, as_table(churn_frame([]), CHURN_SCHEMA), calendar)
    windows = aggregate_event_windows(events, calendar, config)
    return assemble_model_input(spine, customers, windows, config)


def test_check_fails_on_declared_feature_that_is_not_computed():
    params = feature_parameters()
    params["snapshots"].update(PERIOD)
    params["features"].append({"name": "sessions_7d", "kind": "numeric", "description": "x"})
    config = FeatureEngineeringConfig.model_validate(params)
    with pytest.raises(FeatureListError, match=r"declared but not computed: \['sessions_7d'\]"):
        check_model_input(_assembled(config), config)


def test_check_fails_on_computed_feature_that_is_not_declared():
    params = feature_parameters()
    params["snapshots"].update(PERIOD)
    params["features"] = [f for f in params["features"] if f["name"] != "payments_90d"]
    config = FeatureEngineeringConfig.model_validate(params)
    with pytest.raises(FeatureListError, match=r"not declared .*\['payments_90d'\]"):
        check_model_input(_assembled(config), config)


def test_check_fails_on_kind_mismatch():
    params = feature_parameters()
    params["snapshots"].update(PERIOD)
    for spec in params["features"]:
        if spec["name"] == "region":
            spec.pop("categories")
            spec["kind"] = "numeric"
    config = FeatureEngineeringConfig.model_validate(params)
    with pytest.raises(FeatureListError, match="'region' is declared numeric but has type string"):
        check_model_input(_assembled(config), config)


def test_check_orders_columns_as_the_feature_list():
    config = make_config(**PERIOD)
    checked = check_model_input(_assembled(config), config)
    assert list(checked.columns) == [
        "customer_id",
        "snapshot_date",
        "churned",
        *config.feature_names,
    ]


# --------------------------------------------------------------------------- portability


class _PySparkOptions(Config):
    treat_nan_as_null: bool = False


def test_feature_expression_compiles_for_pyspark(monkeypatch):
    """No DuckDB-only operation: the whole expression compiles to Spark SQL (no Spark needed)."""
    if ibis.options.pyspark is None:  # set by the pyspark backend when pyspark is installed
        monkeypatch.setattr(ibis.options, "pyspark", _PySparkOptions())
    config = make_config(**PERIOD)
    sql = ibis.to_sql(check_model_input(_assembled(config), config), dialect="pyspark")
    assert "usage_trend" in sql
    assert "days_since_last_session" in sql

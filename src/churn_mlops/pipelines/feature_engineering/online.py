"""Event features of chosen customers at any moment: the rows the Kafka consumer pushes online.

The expressions are those of ``model_input_table`` (:func:`aggregate_event_windows` and
:func:`event_features`), evaluated for one snapshot at ``moment`` instead of the monthly
calendar: on the same primary events, a customer's row equals the one feature_engineering
would compute for a snapshot at that moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from churn_mlops.pipelines.feature_engineering.nodes import (
    aggregate_event_windows,
    calendar_for_dates,
    event_features,
)
from churn_mlops.pipelines.feature_engineering.params import (
    RECENCY_FEATURE,
    USAGE_TREND_FEATURE,
    FeatureEngineeringConfig,
)


def event_feature_names(config: FeatureEngineeringConfig) -> list[str]:
    """The features computed from events alone: window aggregates, usage trend, recency."""
    return [agg.name for agg in config.window_aggregates] + [USAGE_TREND_FEATURE, RECENCY_FEATURE]


def event_features_at(
    events: ir.Table,
    customer_ids: list[int],
    moment: datetime,
    config: FeatureEngineeringConfig,
) -> ir.Table:
    """The event features of ``customer_ids`` for a snapshot at ``moment`` (naive UTC).

    Only events strictly before ``moment`` count, as for every snapshot. A customer without
    events in the look-back gets zero windows and the capped recency.

    Args:
        events: Primary events (at least those of ``customer_ids`` in the look-back).
        customer_ids: The customers to compute.
        moment: The snapshot time.
        config: Validated ``feature_engineering`` parameters.

    Returns:
        ``customer_id``, ``snapshot_date`` (= ``moment``) and :func:`event_feature_names`.
    """
    calendar = calendar_for_dates(
        [moment],
        config,
        timedelta(days=config.lookback_days),
        timedelta(days=config.snapshots.label_horizon_days),
    )
    spine = ibis.memtable(
        {"customer_id": list(customer_ids), "snapshot_date": [moment] * len(customer_ids)},
        schema=ibis.schema({"customer_id": "int64", "snapshot_date": "timestamp"}),
    )
    # A semi-join, not isin(): an IN list of thousands of ids takes Ibis seconds to compile.
    chosen = events.semi_join(spine.select("customer_id"), "customer_id")
    windows = aggregate_event_windows(chosen, calendar, config, any_day=True).rename(
        customer_id_ev="customer_id", snapshot_date_ev="snapshot_date"
    )
    table = spine.left_join(
        windows,
        [
            spine.customer_id == windows.customer_id_ev,
            spine.snapshot_date == windows.snapshot_date_ev,
        ],
    )
    columns = event_features(table, table.snapshot_date.date(), config)
    names = event_feature_names(config)
    return table.select(
        "customer_id", "snapshot_date", **{name: columns[name] for name in names}
    ).order_by("customer_id")

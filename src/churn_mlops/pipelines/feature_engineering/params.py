"""Validated form of ``feature_engineering`` parameters.

The feature list itself follows the shared contract (:mod:`churn_mlops.contracts.features`),
so the names, kinds, categories and bounds declared in
``conf/base/parameters_feature_engineering.yml`` are the single source of truth.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from churn_mlops.contracts.base import StrictModel as _Strict
from churn_mlops.contracts.features import FeatureSpec, reject_duplicates

#: Columns of ``model_input_table`` that are not model features, in output order.
KEY_COLUMNS: tuple[str, ...] = ("customer_id", "snapshot_date")
LABEL_COLUMN = "churned"

#: Features derived in code (not declared as window aggregates).
TENURE_FEATURE = "tenure_days"
USAGE_TREND_FEATURE = "usage_trend"
RECENCY_FEATURE = "days_since_last_session"


class SnapshotConfig(_Strict):
    """Where the monthly snapshots start and stop, and how far ahead the label looks.

    Attributes:
        period_start: First day of the observed period; ``None`` takes midnight of the day of
            the earliest event.
        period_end: Exclusive end of the observed period; ``None`` takes midnight after the
            day of the latest event.
        history_months: Months of history required before the first snapshot.
        label_horizon_days: A snapshot is labelled churned when ``churn_date`` falls in
            ``[snapshot_date, snapshot_date + label_horizon_days)``.
    """

    period_start: date | None = None
    period_end: date | None = None
    history_months: int = Field(default=3, ge=0)
    label_horizon_days: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _period_is_ordered(self) -> SnapshotConfig:
        if self.period_start and self.period_end and self.period_start >= self.period_end:
            raise ValueError(
                f"snapshots.period_start ({self.period_start}) must be before "
                f"snapshots.period_end ({self.period_end})"
            )
        return self


class WindowAggregate(_Strict):
    """One count or sum of events of a type in the ``window_days`` days before a snapshot.

    Attributes:
        name: Output feature name.
        event_type: Value of ``events.event_type`` that is aggregated.
        function: ``count`` of events or ``sum`` of ``column``.
        column: Numeric events column summed (required for ``sum``, forbidden for ``count``).
        window_days: Window length; an event counts when
            ``snapshot_date - window_days <= event_time < snapshot_date``.
    """

    name: str = Field(min_length=1)
    event_type: str = Field(min_length=1)
    function: Literal["count", "sum"]
    column: Literal["amount", "duration_minutes"] | None = None
    window_days: int = Field(ge=1)

    @model_validator(mode="after")
    def _column_matches_function(self) -> WindowAggregate:
        if self.function == "sum" and self.column is None:
            raise ValueError(f"window aggregate {self.name!r}: function 'sum' needs a column")
        if self.function == "count" and self.column is not None:
            raise ValueError(
                f"window aggregate {self.name!r}: function 'count' takes no column "
                f"(got {self.column!r})"
            )
        return self


class UsageTrendConfig(_Strict):
    """``usage_trend`` = per-day rate of ``short`` divided by per-day rate of ``long``.

    Both name ``count`` window aggregates; the trend is 0 when ``long`` is 0.
    """

    short: str
    long: str


class RecencyConfig(_Strict):
    """``days_since_last_session``: calendar days since the last event of ``event_type``.

    Attributes:
        event_type: The event type whose recency is measured.
        cap_days: Value used when there was no such event in the last ``cap_days`` days (and
            the upper bound of the feature).
    """

    event_type: str = "session"
    cap_days: int = Field(default=90, ge=1)


class FeatureEngineeringConfig(_Strict):
    """All ``feature_engineering`` parameters, validated once when the pipeline starts."""

    snapshots: SnapshotConfig = SnapshotConfig()
    window_aggregates: list[WindowAggregate] = Field(min_length=1)
    usage_trend: UsageTrendConfig
    recency: RecencyConfig = RecencyConfig()
    customer_attributes: list[str] = Field(min_length=1)
    features: list[FeatureSpec] = Field(min_length=1)
    #: Window sums are computed exactly as decimals with this many fractional digits (then
    #: stored as float64), so they do not depend on the engine's thread scheduling.
    sum_decimal_places: int = Field(default=6, ge=0, le=18)
    # Share of rows whose categorical feature value is not among its declared categories
    # (encoded as "unknown" by the model) above which the pipeline stops.
    max_unknown_category_share: float = Field(default=0.0, ge=0.0, le=1.0)
    # Set from data_processing.input_mode (not a feature_engineering key of its own).
    input_mode: Literal["event_log", "customer_table"] = "event_log"

    @model_validator(mode="after")
    def _names_are_consistent(self) -> FeatureEngineeringConfig:
        aggregate_names = [agg.name for agg in self.window_aggregates]
        reject_duplicates("window_aggregates", aggregate_names)
        reject_duplicates("features", [spec.name for spec in self.features])
        reject_duplicates("customer_attributes", self.customer_attributes)
        counts = {agg.name for agg in self.window_aggregates if agg.function == "count"}
        for role in ("short", "long"):
            ref = getattr(self.usage_trend, role)
            if ref not in counts:
                raise ValueError(
                    f"usage_trend.{role} = {ref!r} must name a 'count' window aggregate; "
                    f"available: {sorted(counts)}"
                )
        reserved = {*KEY_COLUMNS, LABEL_COLUMN}
        attributes = self.customer_attributes if self.input_mode == "event_log" else []
        clash = reserved.intersection(aggregate_names + attributes + self.feature_names)
        if clash:
            raise ValueError(f"feature names {sorted(clash)} are reserved for key/label columns")
        return self

    @property
    def lookback_days(self) -> int:
        """The longest look back from a snapshot that any feature needs."""
        return max([agg.window_days for agg in self.window_aggregates] + [self.recency.cap_days])

    @property
    def max_month_offset(self) -> int:
        """An upper bound on how many month boundaries after an event it can still count.

        Every calendar month has at least 28 days, so an event older than
        ``ceil(lookback_days / 28) + 1`` month boundaries is outside every window.
        """
        return math.ceil(self.lookback_days / 28) + 1

    @property
    def derived_features(self) -> set[str]:
        """Features computed from events or signup dates rather than read from a column."""
        names = {agg.name for agg in self.window_aggregates}
        return names | {TENURE_FEATURE, USAGE_TREND_FEATURE, RECENCY_FEATURE}

    @property
    def table_features(self) -> list[str]:
        """Customer columns carried as features: ``customer_attributes`` for an event log;
        in ``customer_table`` mode every listed feature that is not derived."""
        if self.input_mode == "event_log":
            return list(self.customer_attributes)
        return [name for name in self.feature_names if name not in self.derived_features]

    @property
    def feature_names(self) -> list[str]:
        """Feature names in contract order."""
        return [spec.name for spec in self.features]

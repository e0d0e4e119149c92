"""Point-in-time features: monthly snapshot spine, event window aggregates, labels, checks.

Every transformation is an Ibis expression, so the same nodes run on DuckDB (default) and on
PySpark (``--env spark``). Features at a snapshot use only events with
``event_time < snapshot_date``; see ``docs/features.md``.

The window aggregates avoid a cross join of all events with all snapshots: each event is
joined, on its month index, to the few snapshots whose look-back can reach it (at most
``ceil(lookback_days / 28) + 1`` of them), then filtered to the exact windows and aggregated
per (customer, snapshot). The work is linear in the number of events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
from pydantic import ValidationError

from churn_mlops.pipelines.feature_engineering.params import (
    KEY_COLUMNS,
    LABEL_COLUMN,
    RECENCY_FEATURE,
    TENURE_FEATURE,
    USAGE_TREND_FEATURE,
    FeatureEngineeringConfig,
)

logger = logging.getLogger(__name__)


class FeatureEngineeringError(ValueError):
    """Base class of the errors raised by the feature_engineering pipeline."""


class FeatureParameterError(FeatureEngineeringError):
    """The ``feature_engineering`` parameters do not validate."""


class FeatureInputError(FeatureEngineeringError):
    """An input table lacks a column or has a column of the wrong type."""


class SnapshotCalendarError(FeatureEngineeringError):
    """The observed period is too short to hold a single complete snapshot."""


class FeatureListError(FeatureEngineeringError):
    """The feature table does not match the declared feature list."""


class FeatureCategoryError(FeatureEngineeringError):
    """A categorical feature's declared categories do not fit the values in the data."""


_DtypeCheck = tuple[str, Callable[[dt.DataType], bool]]

_INTEGER: _DtypeCheck = ("an integer", lambda t: t.is_integer())
_TIMESTAMP: _DtypeCheck = ("a timestamp or date", lambda t: t.is_timestamp() or t.is_date())
_STRING: _DtypeCheck = ("a string", lambda t: t.is_string())
_NUMERIC: _DtypeCheck = ("a number", lambda t: t.is_numeric())
_ANY: _DtypeCheck = ("any type", lambda t: True)

CUSTOMER_COLUMNS: dict[str, _DtypeCheck] = {"customer_id": _INTEGER, "signup_date": _TIMESTAMP}
EVENT_COLUMNS: dict[str, _DtypeCheck] = {
    "customer_id": _INTEGER,
    "event_time": _TIMESTAMP,
    "event_type": _STRING,
    "amount": _NUMERIC,
    "duration_minutes": _NUMERIC,
}
CHURN_COLUMNS: dict[str, _DtypeCheck] = {"customer_id": _INTEGER, "churn_date": _TIMESTAMP}
_ID: _DtypeCheck = ("an integer or a string", lambda t: t.is_integer() or t.is_string())
#: customers_primary in ``customer_table`` mode (data_processing renames the table's columns).
CUSTOMER_TABLE_COLUMNS: dict[str, _DtypeCheck] = {
    "customer_id": _ID,
    "snapshot_date": _TIMESTAMP,
    LABEL_COLUMN: ("a boolean or 0/1 integer", lambda t: t.is_boolean() or t.is_integer()),
}


def _require_columns(table_name: str, table: ir.Table, required: Mapping[str, _DtypeCheck]) -> None:
    """Raise one :class:`FeatureInputError` listing every missing or mistyped column."""
    schema = table.schema()
    problems = []
    for column, (expected, accepts) in required.items():
        if column not in schema:
            problems.append(f"column {column!r} is missing (expected {expected})")
        elif not accepts(schema[column]):
            problems.append(f"column {column!r} has type {schema[column]}, expected {expected}")
    if problems:
        raise FeatureInputError(
            f"Table {table_name!r} cannot be used for features: "
            + "; ".join(problems)
            + f". Columns present: {list(schema.names)}"
        )


def validate_feature_parameters(
    parameters: dict[str, Any], input_mode: str = "event_log"
) -> FeatureEngineeringConfig:
    """Validate the ``feature_engineering`` parameters once, where they enter the pipeline.

    Args:
        parameters: The ``feature_engineering`` mapping from the parameters files.
        input_mode: ``data_processing.input_mode``: ``event_log`` builds monthly snapshots
            from the three tables; ``customer_table`` takes one snapshot per row of the
            customer table (its label and date) and derives event features only when listed.

    Returns:
        The validated configuration, passed to every other node.

    Raises:
        FeatureParameterError: Naming each invalid key, its value and what was expected.
    """
    try:
        config = FeatureEngineeringConfig.model_validate({**parameters, "input_mode": input_mode})
    except ValidationError as exc:
        raise FeatureParameterError(f"Invalid parameters 'feature_engineering': {exc}") from exc
    logger.info(
        "Feature parameters: %d window aggregates, %d features, look-back %d days",
        len(config.window_aggregates),
        len(config.features),
        config.lookback_days,
    )
    return config


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1)


def _first_boundary_at_or_after(day: date) -> int:
    return _month_index(day) + (0 if day.day == 1 else 1)


def _observed_period(events: ir.Table, config: FeatureEngineeringConfig) -> tuple[date, date]:
    """The period ``[start, end)`` covered by the data, from parameters or from the events."""
    start, end = config.snapshots.period_start, config.snapshots.period_end
    if start is None or end is None:
        bounds = (
            events.aggregate(first=events.event_time.min(), last=events.event_time.max())
            .to_pyarrow()
            .to_pylist()[0]
        )
        if bounds["first"] is None:
            raise SnapshotCalendarError(
                "Table 'events_primary' is empty, so the observed period cannot be derived; "
                "set feature_engineering.snapshots.period_start and period_end"
            )
        # Timestamps become dates: the period starts at midnight of the earliest event and
        # ends (exclusive) at midnight after the latest one.
        start = start or _as_date(bounds["first"])
        end = end or _as_date(bounds["last"]) + timedelta(days=1)
    return start, end


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def window_start_column(days: int) -> str:
    """Name of the snapshot calendar column holding ``snapshot_date - days``."""
    return f"start_{days}d"


def build_snapshot_calendar(
    events: ir.Table, config: FeatureEngineeringConfig, customers: ir.Table | None = None
) -> ir.Table:
    """List the snapshot dates: month boundaries with full history and a fully observed label.

    The first snapshot is ``history_months`` month boundaries after the start of the period,
    moved later if needed so that the longest look-back (window or recency cap) lies inside
    the period. The last snapshot is the last month boundary ``s`` with
    ``s + label_horizon_days <= period_end``.

    Args:
        events: Primary events (only ``event_time`` is read, and only when the period is not
            set in the parameters).
        config: Validated parameters.

    Returns:
        One row per snapshot: ``snapshot_date``, ``snapshot_month`` (year * 12 + month - 1),
        ``lookback_start`` and ``lookback_month``, ``label_end``, and ``start_<n>d`` =
        ``snapshot_date - n days`` for every window length ``n``.

    Raises:
        FeatureInputError: If ``events`` lacks a column the features need.
        SnapshotCalendarError: If no snapshot fits in the observed period.
    """
    _require_columns("events_primary", events, EVENT_COLUMNS)
    snapshots = config.snapshots
    lookback = timedelta(days=config.lookback_days)
    horizon = timedelta(days=snapshots.label_horizon_days)
    if config.input_mode == "customer_table":
        if customers is None:
            raise FeatureInputError("customer_table mode needs customers_primary for its dates")
        _require_columns("customers_primary", customers, CUSTOMER_TABLE_COLUMNS)
        days = customers.select(day=customers.snapshot_date.cast("timestamp")).distinct()
        dates = sorted(days.to_pyarrow().column("day").to_pylist())
        return calendar_for_dates(dates, config, lookback, horizon)
    start, end = _observed_period(events, config)
    first = max(
        _first_boundary_at_or_after(start) + snapshots.history_months,
        _first_boundary_at_or_after(start + lookback),
    )
    months = []
    month = first
    while _month_start(month) + horizon <= datetime.combine(end, datetime.min.time()):
        months.append(month)
        month += 1
    if not months:
        raise SnapshotCalendarError(
            f"No snapshot fits in the observed period [{start}, {end}): the first candidate, "
            f"{_month_start(first).date()}, needs {snapshots.history_months} months of history "
            f"and {config.lookback_days} days of look-back before it and "
            f"{snapshots.label_horizon_days} days of label horizon before {end}. Lengthen the "
            "period or lower feature_engineering.snapshots.history_months / label_horizon_days"
        )
    dates = [_month_start(m) for m in months]
    logger.info(
        "Observed period [%s, %s): %d monthly snapshots from %s to %s",
        start,
        end,
        len(dates),
        dates[0].date(),
        dates[-1].date(),
    )
    return calendar_for_dates(dates, config, lookback, horizon)


def calendar_for_dates(
    dates: list[datetime], config: FeatureEngineeringConfig, lookback: timedelta, horizon: timedelta
) -> ir.Table:
    """The calendar of :func:`build_snapshot_calendar` for the given snapshot dates."""
    window_days = sorted(
        {agg.window_days for agg in config.window_aggregates} | {config.recency.cap_days}
    )
    columns: dict[str, list[Any]] = {
        "snapshot_date": dates,
        "snapshot_month": [_month_index(d) for d in dates],
        "lookback_start": [d - lookback for d in dates],
        "lookback_month": [_month_index(d - lookback) for d in dates],
        "label_end": [d + horizon for d in dates],
    }
    schema = {name: "timestamp" for name in ("snapshot_date", "lookback_start", "label_end")}
    schema |= {"snapshot_month": "int64", "lookback_month": "int64"}
    for days in window_days:
        columns[window_start_column(days)] = [d - timedelta(days=days) for d in dates]
        schema[window_start_column(days)] = "timestamp"
    return ibis.memtable(columns, schema=ibis.schema(schema))


def build_snapshot_spine(
    customers: ir.Table,
    churn_records: ir.Table,
    snapshot_calendar: ir.Table,
    config: FeatureEngineeringConfig | None = None,
) -> ir.Table:
    """Pair every active customer with every snapshot and attach the churn label.

    A customer is active at a snapshot when ``signup_date < snapshot_date`` and they have not
    churned before it (no churn record, or ``churn_date >= snapshot_date``). The label
    ``churned`` is 1 when ``snapshot_date <= churn_date < label_end``.

    Args:
        customers: Primary customers (``customer_id``, ``signup_date``).
        churn_records: Primary churn records (``customer_id``, ``churn_date``).
        snapshot_calendar: Output of :func:`build_snapshot_calendar`.

    In ``customer_table`` mode every row of the customer table is a snapshot and its label
    column is the label.

    Returns:
        ``customer_id``, ``snapshot_date``, ``churned`` (int64 0/1).
    """
    if config is not None and config.input_mode == "customer_table":
        _require_columns("customers_primary", customers, CUSTOMER_TABLE_COLUMNS)
        return customers.select(
            "customer_id",
            snapshot_date=customers.snapshot_date.cast("timestamp"),
            **{LABEL_COLUMN: customers[LABEL_COLUMN].cast("int64")},
        )
    _require_columns("customers_primary", customers, CUSTOMER_COLUMNS)
    _require_columns("churn_records_primary", churn_records, CHURN_COLUMNS)
    churn = churn_records.select(
        "customer_id", churn_date=churn_records.churn_date.cast("timestamp")
    )
    people = customers.select(
        "customer_id", signup_date=customers.signup_date.cast("timestamp")
    ).left_join(churn, "customer_id")
    grid = people.select("customer_id", "signup_date", "churn_date").cross_join(
        snapshot_calendar.select("snapshot_date", "label_end")
    )
    active = grid.filter(
        grid.signup_date < grid.snapshot_date,
        grid.churn_date.isnull() | (grid.churn_date >= grid.snapshot_date),
    )
    churned = (active.churn_date >= active.snapshot_date) & (active.churn_date < active.label_end)
    return active.select(
        "customer_id",
        "snapshot_date",
        **{LABEL_COLUMN: churned.fill_null(False).cast("int64")},
    ).order_by(list(KEY_COLUMNS))


def aggregate_event_windows(
    events: ir.Table,
    snapshot_calendar: ir.Table,
    config: FeatureEngineeringConfig,
    *,
    any_day: bool = False,
) -> ir.Table:
    """Aggregate events into the declared windows before each snapshot.

    Each event is joined, on its month index, only to the snapshots whose look-back can reach
    it, then kept when ``lookback_start <= event_time < snapshot_date``. A window aggregate of
    ``n`` days counts (or sums) events with ``snapshot_date - n days <= event_time``; the
    recency column is the time of the last event of ``recency.event_type`` within
    ``recency.cap_days``. Sums are exact decimal sums (``sum_decimal_places`` fractional
    digits), so they do not depend on the order in which the engine's threads add them.

    Args:
        events: Primary events.
        snapshot_calendar: Output of :func:`build_snapshot_calendar`.
        config: Validated parameters.
        any_day: The snapshots may fall on any day, not only on month starts.

    Returns:
        One row per (customer, snapshot) with at least one event in the look-back:
        ``customer_id``, ``snapshot_date``, one column per window aggregate (sums are null
        when nothing was summed) and ``last_<recency event type>_time``.
    """
    _require_columns("events_primary", events, EVENT_COLUMNS)
    # Month-start snapshots never count events of their own month; a customer table's dates
    # can fall mid-month, so its snapshots also look at their own month (offset 0).
    first_offset = 0 if any_day or config.input_mode == "customer_table" else 1
    offsets = ibis.memtable(
        {"month_offset": list(range(first_offset, config.max_month_offset + 1))},
        schema=ibis.schema({"month_offset": "int64"}),
    )
    # (snapshot, source month) pairs: the months whose events a snapshot's look-back can reach.
    pairs = snapshot_calendar.cross_join(offsets)
    pairs = pairs.mutate(event_month=pairs.snapshot_month - pairs.month_offset)
    pairs = pairs.filter(pairs.event_month >= pairs.lookback_month).drop(
        "month_offset", "snapshot_month", "lookback_month", "label_end"
    )

    event_types = sorted(
        {agg.event_type for agg in config.window_aggregates} | {config.recency.event_type}
    )
    used = events.filter(events.event_type.isin(event_types))
    used = used.select(
        "customer_id",
        "event_type",
        "amount",
        "duration_minutes",
        event_time=used.event_time.cast("timestamp"),
        event_month=used.event_time.year() * 12 + used.event_time.month() - 1,
    )
    joined = used.join(pairs, "event_month")
    # Strictly before the snapshot: the leakage guarantee does not rest on the month join alone.
    joined = joined.filter(
        joined.event_time >= joined.lookback_start, joined.event_time < joined.snapshot_date
    )

    metrics: dict[str, ir.Scalar] = {}
    for agg in config.window_aggregates:
        in_window = (joined.event_type == agg.event_type) & (
            joined.event_time >= joined[window_start_column(agg.window_days)]
        )
        if agg.function == "count":
            metrics[agg.name] = joined.customer_id.count(where=in_window)
        else:
            # An exact decimal sum: float additions in thread order differ in the last bits.
            exact = joined[agg.column].cast(dt.Decimal(38, config.sum_decimal_places))
            metrics[agg.name] = exact.sum(where=in_window)
    recency = config.recency
    metrics[_recency_column(config)] = joined.event_time.max(
        where=(joined.event_type == recency.event_type)
        & (joined.event_time >= joined[window_start_column(recency.cap_days)])
    )
    return joined.group_by(["customer_id", "snapshot_date"]).aggregate(**metrics)


def _recency_column(config: FeatureEngineeringConfig) -> str:
    return f"last_{config.recency.event_type}_time"


def _usage_trend(columns: dict[str, ir.Value], config: FeatureEngineeringConfig) -> ir.Value:
    """Per-day rate of the short window over that of the long window (0 when it is empty)."""
    by_name = {agg.name: agg for agg in config.window_aggregates}
    short, long = by_name[config.usage_trend.short], by_name[config.usage_trend.long]
    # (short / short_days) / (long / long_days), written as one division of exact products so
    # that "every session in the short window" gives exactly long_days / short_days (3.0), not
    # 3.0000000000000004, which the serving schema's declared maximum would refuse.
    numerator = columns[short.name].cast("float64") * long.window_days
    denominator = columns[long.name].cast("float64") * short.window_days
    # NULLIF rather than a guarded division: Spark in ANSI mode fails on division by zero.
    return (numerator / denominator.nullif(0.0)).fill_null(0.0)


def assemble_model_input(
    snapshot_spine: ir.Table,
    customers: ir.Table,
    event_windows: ir.Table,
    config: FeatureEngineeringConfig,
) -> ir.Table:
    """Join spine, customer attributes and window aggregates, and derive the other features.

    Windows without events are zero-filled. ``tenure_days`` counts calendar days from signup
    to the snapshot; ``usage_trend`` is the per-day rate of the short window over that of the
    long window (0 when the long window is empty); ``days_since_last_session`` counts calendar
    days from the last session to the snapshot and is ``recency.cap_days`` when there was
    none within the cap. Boolean attributes become 0/1 integers.

    Args:
        snapshot_spine: Output of :func:`build_snapshot_spine`.
        customers: Primary customers.
        event_windows: Output of :func:`aggregate_event_windows`.
        config: Validated parameters.

    Returns:
        Key and label columns, then the declared features in feature-list order, then any
        computed column the feature list does not declare (rejected by
        :func:`check_model_input`).
    """
    if config.input_mode == "customer_table":
        return _assemble_customer_table(customers, event_windows, config)
    attribute_columns = {name: _ANY for name in config.customer_attributes}
    _require_columns("customers_primary", customers, {**CUSTOMER_COLUMNS, **attribute_columns})
    attributes = customers.select("customer_id", "signup_date", *config.customer_attributes).rename(
        customer_id_attr="customer_id"
    )
    table = snapshot_spine.join(
        attributes, snapshot_spine.customer_id == attributes.customer_id_attr
    )
    windows = event_windows.rename(customer_id_ev="customer_id", snapshot_date_ev="snapshot_date")
    table = table.left_join(
        windows,
        [
            table.customer_id == windows.customer_id_ev,
            table.snapshot_date == windows.snapshot_date_ev,
        ],
    )

    snapshot_day = table.snapshot_date.date()
    columns: dict[str, ir.Value] = {
        TENURE_FEATURE: snapshot_day.delta(
            table.signup_date.cast("timestamp").date(), unit="day"
        ).cast("int64")
    }
    for name in config.customer_attributes:
        column = table[name]
        columns[name] = column.cast("int64") if column.type().is_boolean() else column
    columns |= event_features(table, snapshot_day, config)

    declared = [name for name in config.feature_names if name in columns]
    undeclared = [name for name in columns if name not in config.feature_names]
    output: dict[str, ir.Value] = {
        "customer_id": table.customer_id,
        # Nanoseconds so that pandas readers get datetime64[ns], as docs/data_model.md says
        # (Spark has no nanosecond timestamps and keeps microseconds).
        "snapshot_date": table.snapshot_date.cast("timestamp(9)"),
        LABEL_COLUMN: table[LABEL_COLUMN],
    }
    output |= {name: columns[name] for name in declared + undeclared}
    return table.select(**output)


def event_features(
    table: ir.Table, snapshot_day: ir.DateValue, config: FeatureEngineeringConfig
) -> dict[str, ir.Value]:
    """Window aggregates (zero-filled), usage trend and recency of a table joined to windows."""
    columns: dict[str, ir.Value] = {}
    for agg in config.window_aggregates:
        value = table[agg.name].fill_null(0)
        columns[agg.name] = value.cast("int64" if agg.function == "count" else "float64")
    columns[USAGE_TREND_FEATURE] = _usage_trend(columns, config)
    cap = config.recency.cap_days
    last_seen = table[_recency_column(config)]
    columns[RECENCY_FEATURE] = (
        snapshot_day.delta(last_seen.date(), unit="day")
        .fill_null(cap)
        .clip(upper=cap)
        .cast("int64")
    )
    return columns


def _assemble_customer_table(
    customers: ir.Table, event_windows: ir.Table, config: FeatureEngineeringConfig
) -> ir.Table:
    """``customer_table`` mode: one row per table row, its columns as listed features; event
    features (and ``tenure_days`` from a ``signup_date`` column) only when they are listed."""
    table_features = config.table_features
    needed = {name: _ANY for name in table_features if name != TENURE_FEATURE}
    _require_columns("customers_primary", customers, {**CUSTOMER_TABLE_COLUMNS, **needed})
    table = customers.mutate(snapshot_date=customers.snapshot_date.cast("timestamp"))
    snapshot_day = table.snapshot_date.date()
    columns: dict[str, ir.Value] = {}
    for name in table_features:
        column = table[name]
        columns[name] = column.cast("int64") if column.type().is_boolean() else column
    listed = set(config.feature_names)
    if listed & (config.derived_features - {TENURE_FEATURE}):
        windows = event_windows.rename(
            customer_id_ev="customer_id", snapshot_date_ev="snapshot_date"
        )
        table = table.left_join(
            windows,
            [
                table.customer_id == windows.customer_id_ev,
                table.snapshot_date == windows.snapshot_date_ev,
            ],
        )
        snapshot_day = table.snapshot_date.date()
        derived = event_features(table, snapshot_day, config)
        columns |= {name: value for name, value in derived.items() if name in listed}
    if TENURE_FEATURE in listed:
        _require_columns("customers_primary", customers, {"signup_date": _TIMESTAMP})
        columns[TENURE_FEATURE] = snapshot_day.delta(
            table.signup_date.cast("timestamp").date(), unit="day"
        ).cast("int64")
    output: dict[str, ir.Value] = {
        "customer_id": table.customer_id,
        "snapshot_date": table.snapshot_date.cast("timestamp(9)"),
        LABEL_COLUMN: table[LABEL_COLUMN].cast("int64"),
    }
    output |= {name: columns[name] for name in config.feature_names if name in columns}
    return table.select(**output)


def check_model_input(model_input: ir.Table, config: FeatureEngineeringConfig) -> ir.Table:
    """Check the feature table against the declared feature list and fix the column order.

    Only the schema is checked (no query runs): every declared feature is present with a
    type matching its kind (numeric: a number; categorical: a string), and no column outside
    keys, label and feature list is present.

    Args:
        model_input: Output of :func:`assemble_model_input`.
        config: Validated parameters.

    Returns:
        ``customer_id``, ``snapshot_date``, ``churned`` and the features in list order, rows
        sorted by ``customer_id, snapshot_date``.

    Raises:
        FeatureListError: Naming every missing, undeclared or mistyped column.
    """
    expected = [*KEY_COLUMNS, LABEL_COLUMN, *config.feature_names]
    actual = list(model_input.columns)
    problems = []
    missing = [name for name in expected if name not in actual]
    extra = [name for name in actual if name not in expected]
    if missing:
        problems.append(f"declared but not computed: {missing}")
    if extra:
        problems.append(f"computed but not declared in feature_engineering.features: {extra}")
    schema = model_input.schema()
    for spec in config.features:
        if spec.name not in schema:
            continue
        dtype = schema[spec.name]
        if spec.kind == "numeric" and not (dtype.is_numeric() or dtype.is_boolean()):
            problems.append(f"feature {spec.name!r} is declared numeric but has type {dtype}")
        if spec.kind == "categorical" and not dtype.is_string():
            problems.append(f"feature {spec.name!r} is declared categorical but has type {dtype}")
    if problems:
        raise FeatureListError(
            "Table 'model_input_table' does not match the feature list in "
            "conf/base/parameters_feature_engineering.yml: " + "; ".join(problems)
        )
    from churn_mlops.pipelines.feature_engineering.categories import check_feature_categories

    check_feature_categories(model_input, config)
    logger.info("model_input_table matches the feature list (%d features)", len(config.features))
    # Canonical row order (by key), so the same data always writes the same file content.
    return model_input.select(*expected).order_by(list(KEY_COLUMNS))

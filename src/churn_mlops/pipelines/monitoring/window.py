"""Monitoring nodes: the current window, from the feature table or the serving prediction log.

The window's rows carry the champion's score, the label when it has arrived, the calendar
month and whether the row falls in the monitored window.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.monitoring.errors import MonitoringWindowError
from churn_mlops.pipelines.monitoring.common import (
    CUSTOMER,
    FEATURE_PREFIX,
    IN_WINDOW,
    LABEL,
    PERIOD,
    REQUEST,
    SCORE,
    TIMESTAMP,
    VERSION,
    champion_features,
)
from churn_mlops.pipelines.monitoring.params import MonitoringParams

logger = logging.getLogger(__name__)


def _month(ts: pd.Series) -> pd.Series:
    return ts.dt.strftime("%Y-%m")


# --------------------------------------------------------------------------- current window


def _window_from_feature_table(
    table: pd.DataFrame, champion: dict[str, Any], config: MonitoringParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    specs = champion_features(champion)
    names = [s.name for s in specs]
    missing = [c for c in ("snapshot_date", "churned", CUSTOMER, *names) if c not in table.columns]
    if missing:
        raise MonitoringWindowError(
            f"model_input_table lacks column(s) {missing} needed to monitor "
            f"{champion['model_name']} v{champion['version']}; columns are {sorted(table.columns)}."
        )
    snapshots = pd.to_datetime(table["snapshot_date"])
    months = snapshots.dt.to_period("M")
    available = sorted(months.unique())
    if not available:
        raise MonitoringWindowError("model_input_table is empty; expected scored snapshot months.")
    window_cfg = config.window
    last = pd.Period(window_cfg.end_month, "M") if window_cfg.end_month else available[-1]
    if last not in available:
        raise MonitoringWindowError(
            f"monitoring.window.end_month = {window_cfg.end_month} is not a snapshot month of "
            f"model_input_table; available months are {[str(m) for m in available]}."
        )
    first = last - (window_cfg.months - 1)
    history_start = first - window_cfg.history_months
    keep = (months >= history_start) & (months <= last)
    rows = table.loc[keep]
    scores = champion["model"].predict_proba(rows[names])[:, 1]
    frame = pd.DataFrame(
        {
            CUSTOMER: rows[CUSTOMER].to_numpy(),
            TIMESTAMP: snapshots[keep].dt.tz_localize(None).to_numpy(),
            PERIOD: months[keep].astype(str).to_numpy(),
            IN_WINDOW: (months[keep] >= first).to_numpy(),
            VERSION: str(champion["version"]),
            SCORE: scores,
            LABEL: pd.array(rows["churned"].to_numpy(), dtype="Int64"),
        }
    )
    frame = pd.concat([frame, rows[names].reset_index(drop=True)], axis=1)
    start = first.to_timestamp()
    end = (last + 1).to_timestamp()
    info = {
        "source": "model_input_table",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "as_of": end.isoformat(),
        "latest_record": snapshots.max().isoformat(),
        "available_periods": [str(m) for m in available],
        "window_periods": [str(m) for m in available if first <= m <= last],
    }
    return frame, info


def _label_from_feedback_and_churn(
    log: pd.DataFrame,
    feedback: pd.DataFrame | None,
    churn_records: pd.DataFrame | None,
    as_of: pd.Timestamp,
    horizon_days: int,
) -> pd.Series:
    """Delayed labels: feedback by request id, then by customer id, then churn records."""
    label = pd.Series(pd.NA, index=log.index, dtype="Int64")
    if feedback is not None and len(feedback):
        fb = feedback.dropna(subset=["label"]).sort_values(TIMESTAMP)
        if REQUEST in fb.columns and fb[REQUEST].notna().any():
            by_request = fb.dropna(subset=[REQUEST]).drop_duplicates(REQUEST, keep="last")
            mapped = log[REQUEST].map(by_request.set_index(REQUEST)["label"])
            label = label.fillna(mapped.astype("Int64"))
        if CUSTOMER in fb.columns and fb[CUSTOMER].notna().any():
            by_customer = fb.dropna(subset=[CUSTOMER]).drop_duplicates(CUSTOMER, keep="last")
            mapped = log[CUSTOMER].map(by_customer.set_index(CUSTOMER)["label"])
            label = label.fillna(mapped.astype("Int64"))
    if churn_records is not None and len(churn_records) and log[CUSTOMER].notna().any():
        churn_at = log[CUSTOMER].map(
            churn_records.drop_duplicates(CUSTOMER).set_index(CUSTOMER)["churn_date"]
        )
        churn_at = pd.to_datetime(churn_at).dt.tz_localize("UTC")
        horizon = pd.Timedelta(days=horizon_days)
        # A churn recorded after as_of is not known yet at as_of (replays stay honest).
        churned = (
            (churn_at >= log[TIMESTAMP].dt.floor("D"))
            & (churn_at < log[TIMESTAMP] + horizon)
            & (churn_at <= as_of)
        )
        matured = log[TIMESTAMP] + horizon <= as_of
        known = log[CUSTOMER].notna() & (churned | matured)
        from_records = pd.Series(pd.NA, index=log.index, dtype="Int64")
        from_records[known] = churned[known].astype(int)
        label = label.fillna(from_records)
    return label


def _window_from_prediction_log(
    log: pd.DataFrame,
    feedback: pd.DataFrame | None,
    churn_records: pd.DataFrame | None,
    champion: dict[str, Any],
    config: MonitoringParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    specs = champion_features(champion)
    parse_errors = int(log["parse_error"].notna().sum()) if "parse_error" in log else 0
    records = log.loc[log["parse_error"].isna()] if "parse_error" in log else log
    records = records.dropna(subset=[TIMESTAMP])
    if records.empty:
        raise MonitoringWindowError(
            "The prediction log holds no readable prediction record "
            f"({parse_errors} unreadable line(s)); expected JSON lines from the serving app in "
            "PREDICTION_LOG_DIR, or set monitoring.window.source: model_input_table."
        )
    window_cfg = config.window
    as_of = (
        pd.Timestamp(window_cfg.as_of).tz_convert("UTC")
        if window_cfg.as_of and pd.Timestamp(window_cfg.as_of).tzinfo
        else pd.Timestamp(window_cfg.as_of, tz="UTC")
        if window_cfg.as_of
        else records[TIMESTAMP].max()
    )
    start = as_of - pd.Timedelta(days=window_cfg.days)
    history_start = start.tz_localize(None).to_period("M") - window_cfg.history_months
    history_start_ts = history_start.to_timestamp().tz_localize("UTC")
    keep = (records[TIMESTAMP] > history_start_ts) & (records[TIMESTAMP] <= as_of)
    rows = records.loc[keep].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            REQUEST: rows.get(REQUEST),
            CUSTOMER: pd.to_numeric(rows.get(CUSTOMER), errors="coerce"),
            TIMESTAMP: rows[TIMESTAMP],
            PERIOD: _month(rows[TIMESTAMP].dt.tz_localize(None)),
            IN_WINDOW: (rows[TIMESTAMP] > start).to_numpy(),
            VERSION: rows[VERSION].astype(str),
            SCORE: pd.to_numeric(rows[SCORE], errors="coerce"),
        }
    )
    frame[LABEL] = _label_from_feedback_and_churn(
        frame, feedback, churn_records, as_of, config.performance.label_horizon_days
    )
    missing_features = []
    for spec in specs:
        column = f"{FEATURE_PREFIX}{spec.name}"
        if column not in rows.columns:
            missing_features.append(spec.name)
            frame[spec.name] = np.nan
        elif spec.kind == "numeric":
            frame[spec.name] = pd.to_numeric(rows[column], errors="coerce")
        else:
            frame[spec.name] = rows[column]
    info = {
        "source": "prediction_log",
        "start": start.isoformat(),
        "end": as_of.isoformat(),
        "as_of": as_of.isoformat(),
        "latest_record": records[TIMESTAMP].max().isoformat(),
        "log_parse_errors": parse_errors,
        "missing_features": missing_features,
        "available_periods": sorted(frame[PERIOD].unique().tolist()),
        "window_periods": sorted(frame.loc[frame[IN_WINDOW], PERIOD].unique().tolist()),
        "unparsable_values": {
            spec.name: int(
                (rows[f"{FEATURE_PREFIX}{spec.name}"].notna() & frame[spec.name].isna()).sum()
            )
            for spec in specs
            if spec.kind == "numeric" and f"{FEATURE_PREFIX}{spec.name}" in rows.columns
        },
    }
    return frame, info


def assemble_monitoring_rows(
    champion: dict[str, Any],
    model_input_table: pd.DataFrame | None,
    prediction_log: pd.DataFrame,
    feedback_log: pd.DataFrame,
    churn_records: pd.DataFrame | None,
    config: MonitoringParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The current window and the history months before it, scored, with delayed labels.

    ``model_input_table``: the latest ``window.months`` snapshot months (or up to
    ``window.end_month``) scored by the champion, labels from the table's ``churned``.
    ``prediction_log``: the served predictions of the last ``window.days`` days, labels from
    feedback (by request id, then customer id) and churn records (churned within
    ``label_horizon_days`` after the prediction; 0 once that horizon has passed).

    Returns:
        One row per scored customer/request with the features, ``score``, ``label`` (nullable),
        ``timestamp``, ``period`` (``YYYY-MM``), ``in_window`` and ``model_version``; and a
        description of the window (source, bounds, periods, unreadable records).

    Raises:
        MonitoringWindowError: the chosen source has no usable rows or lacks a column.
    """
    if config.window.source == "model_input_table":
        if model_input_table is None:
            raise MonitoringWindowError(
                "monitoring.window.source is 'model_input_table' but "
                "data/05_model_input/model_input_table.parquet does not exist; run the "
                "feature_engineering pipeline first or use source 'prediction_log'."
            )
        frame, info = _window_from_feature_table(model_input_table, champion, config)
    else:
        frame, info = _window_from_prediction_log(
            prediction_log, feedback_log, churn_records, champion, config
        )
    info["rows"] = int(frame[IN_WINDOW].sum())
    info["history_rows"] = int((~frame[IN_WINDOW]).sum())
    info["labelled_share"] = float(frame.loc[frame[IN_WINDOW], LABEL].notna().mean() or 0.0)
    info["model_versions"] = {
        str(k): int(v) for k, v in frame.loc[frame[IN_WINDOW], VERSION].value_counts().items()
    }
    logger.info(
        "Monitoring window %s .. %s from %s: %d rows (+%d history rows)",
        info["start"],
        info["end"],
        info["source"],
        info["rows"],
        info["history_rows"],
    )
    return frame, info

"""Validated form of the ``monitoring`` parameters (``conf/base/parameters_monitoring.yml``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, ValidationError

from churn_mlops.contracts.base import StrictModel as _Strict
from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.monitoring.drift import DriftConfig
from churn_mlops.monitoring.errors import MonitoringError


class MonitoringConfigError(MonitoringError, ValueError):
    """A ``monitoring`` parameter is unknown, missing or out of range."""


class WindowParams(_Strict):
    """Which rows form the current window and the history before it.

    Attributes:
        source: ``model_input_table`` (snapshot months of the feature table, scored by the
            champion, labels from the table) or ``prediction_log`` (what the serving app
            scored, labels from the feedback log and churn records).
        months: ``model_input_table``: the latest ``months`` snapshot months are the window.
        end_month: ``model_input_table``: last month of the window (``YYYY-MM-DD`` inside
            it); ``null`` takes the latest snapshot month.
        days: ``prediction_log``: the window is ``(as_of - days, as_of]``.
        as_of: ``prediction_log``: end of the window (ISO time, UTC); ``null`` takes the
            latest prediction.
        history_months: Calendar months before the window kept for per-month performance and
            as evidently's reference data.
        min_rows: A window with fewer rows gives no drift verdict (a freshness finding instead).
    """

    source: Literal["model_input_table", "prediction_log"]
    months: int = Field(ge=1, le=24)
    end_month: dt.date | None
    days: int = Field(ge=1, le=366)
    as_of: dt.datetime | None
    history_months: int = Field(ge=1, le=60)
    min_rows: int = Field(ge=1)


class ReferenceSampleParams(_Strict):
    """Evidently's reference data: rows of the history months before the window, sampled."""

    max_rows: int = Field(ge=100)
    seed: int


class PerformanceParams(_Strict):
    """Delayed-label performance per calendar month.

    Attributes:
        metric: Metric compared with the champion's test metric (higher is better).
        max_drop: The window's ``metric`` below the champion's by more than this fires ...
        min_z: ... when the drop is also at least ``min_z`` bootstrap standard errors of the
            window's metric (small windows are noisy: 70 churners give an AUC +-0.03).
        bootstrap_samples: Resamples of the window's labelled rows for that standard error.
        seed: Seed of the resampling.
        min_labelled: Months with fewer labelled rows report counts but no verdict.
        min_positives: ... and fewer churners than this.
        label_horizon_days: A prediction without feedback is labelled from churn records:
            1 when the customer churned within this many days after it, 0 once this many days
            have passed without churn, unknown before.
    """

    metric: Literal["roc_auc", "pr_auc", "pr_auc_lift"]
    max_drop: float = Field(gt=0, lt=1)
    min_z: float = Field(ge=0)
    bootstrap_samples: int = Field(ge=10, le=10_000)
    seed: int
    min_labelled: int = Field(ge=1)
    min_positives: int = Field(ge=1)
    label_horizon_days: int = Field(ge=1)


class ConceptDriftParams(_Strict):
    """Concept drift: performance fell while at most ``max_drifted_features`` inputs drifted."""

    max_drifted_features: int = Field(ge=0)


class DataQualityParams(_Strict):
    """Data-quality and feature-change checks of the window (each a share of rows).

    Attributes:
        max_null_share_increase: Null share above the reference's by more than this fires.
        max_out_of_range_share: Values outside the feature contract's [min, max] (or an
            unknown category) above this share fire.
        max_quarantined_share: Rows quarantined by data_processing above this share of a
            table's raw rows fire.
        unit_change_min_ratio: A feature whose median of non-zero values moved by this factor
            or more (either way) is reported as a unit/scale change, with the nearest power
            of ten.
    """

    max_null_share_increase: float = Field(ge=0, le=1)
    max_out_of_range_share: float = Field(ge=0, le=1)
    max_quarantined_share: float = Field(ge=0, le=1)
    unit_change_min_ratio: float = Field(gt=1)


class FreshnessParams(_Strict):
    """Pipeline freshness and failures.

    Attributes:
        max_staleness_days: ``prediction_log``: the latest prediction older than this (against
            ``as_of`` or now) fires; ``model_input_table``: the latest snapshot month further
            than this before the end of the validated raw period fires.
        recent_runs: MLflow runs of this experiment inspected for failed pipeline runs.
    """

    max_staleness_days: int = Field(ge=1)
    recent_runs: int = Field(ge=0)


class ScheduleTrigger(_Strict):
    """Retrain when the champion is older than ``max_model_age_days``."""

    enabled: bool
    max_model_age_days: int = Field(ge=1)


class DriftTrigger(_Strict):
    """Retrain when ``min_drifted_features`` drift, the dataset drifts, or the score drifts."""

    enabled: bool
    min_drifted_features: int = Field(ge=1)
    on_dataset_drift: bool
    on_score_drift: bool


class PerformanceTrigger(_Strict):
    """Retrain when the delayed-label performance fell by more than ``performance.max_drop``."""

    enabled: bool


class RetrainingParams(_Strict):
    """Retraining triggers and what blocks them.

    Attributes:
        block_on_data_issues: A data-quality, feature-change or freshness finding blocks
            retraining: a model must not learn from broken data; fix the data first.
    """

    schedule: ScheduleTrigger
    drift: DriftTrigger
    performance: PerformanceTrigger
    block_on_data_issues: bool


class EvidentlyParams(_Strict):
    """The evidently report (DataDriftPreset + DataSummaryPreset)."""

    enabled: bool


class MonitoringParams(_Strict):
    """All ``monitoring`` parameters."""

    window: WindowParams
    reference_sample: ReferenceSampleParams
    drift: DriftConfig
    performance: PerformanceParams
    concept_drift: ConceptDriftParams
    data_quality: DataQualityParams
    freshness: FreshnessParams
    retraining: RetrainingParams
    evidently: EvidentlyParams


def parse_monitoring_params(raw: dict[str, Any] | MonitoringParams) -> MonitoringParams:
    """Validate the raw ``monitoring`` parameter dictionary.

    Raises:
        MonitoringConfigError: A key is unknown, missing or out of range; the message lists
            each offending key path under ``monitoring`` with the value given.
    """
    if isinstance(raw, MonitoringParams):
        return raw
    try:
        return MonitoringParams.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix="monitoring", show_input=True)
        raise MonitoringConfigError(
            f"Invalid monitoring parameters (conf/base/parameters_monitoring.yml): {problems}"
        ) from None

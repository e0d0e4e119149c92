"""A small synthetic ``model_input_table`` that follows the feature contract (docs/data_model.md).

Training and evaluation tests use it instead of running the simulator, so they stay fast and
do not depend on the upstream pipelines. Churn follows a known logistic hazard, so a good model
clearly beats chance and more late payments always raise the true risk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.release.demo import CATEGORIES as _CATEGORIES
from churn_mlops.release.demo import NUMERIC as _NUMERIC

# The feature contract (conf/base/parameters_feature_engineering.yml), as the demo bundle reads it.
CATEGORIES: dict[str, list[str]] = {name: list(values) for name, values in _CATEGORIES.items()}
NUMERIC: list[str] = list(_NUMERIC)


def feature_list() -> list[dict[str, Any]]:
    """The ``feature_engineering.features`` parameter list for the synthetic table."""
    specs: list[dict[str, Any]] = []
    for name in ("tenure_days", "age", "monthly_fee", "paperless_billing"):
        specs.append({"name": name, "kind": "numeric", "description": f"synthetic {name}"})
    for name, categories in CATEGORIES.items():
        specs.append(
            {
                "name": name,
                "kind": "categorical",
                "categories": list(categories),
                "description": f"synthetic {name}",
            }
        )
    for name in NUMERIC[4:]:
        specs.append({"name": name, "kind": "numeric", "description": f"synthetic {name}"})
    return specs


def make_model_input_table(
    n_customers: int = 500, n_months: int = 10, seed: int = 0, start: str = "2023-04-01"
) -> pd.DataFrame:
    """Build a (customer, monthly snapshot) table with keys, label and contract features.

    Args:
        n_customers: Customers, each present at every snapshot.
        n_months: Monthly snapshots starting at ``start``.
        seed: Random seed.
        start: First snapshot date (first of a month).

    Returns:
        ``customer_id``, ``snapshot_date``, ``churned`` and every feature of
        :func:`feature_list`.
    """
    rng = np.random.default_rng(seed)
    snapshots = pd.date_range(start, periods=n_months, freq="MS")
    n = n_customers * n_months
    customer_id = np.tile(np.arange(1, n_customers + 1, dtype=np.int64), n_months)
    snapshot_date = np.repeat(snapshots.values, n_customers)
    frame = pd.DataFrame(
        {
            "customer_id": customer_id,
            "snapshot_date": pd.to_datetime(snapshot_date).astype("datetime64[ns]"),
        }
    )
    base = {name: rng.choice(values, n_customers) for name, values in CATEGORIES.items()}
    for name, values in base.items():
        frame[name] = np.tile(values, n_months)
    age = rng.integers(18, 80, n_customers)
    frame["age"] = np.tile(age, n_months).astype(np.int64)
    frame["monthly_fee"] = np.tile(rng.uniform(20, 120, n_customers), n_months)
    frame["paperless_billing"] = np.tile(rng.integers(0, 2, n_customers), n_months).astype(np.int64)
    month_index = np.repeat(np.arange(n_months), n_customers)
    frame["tenure_days"] = (
        np.tile(rng.integers(30, 2000, n_customers), n_months) + 30 * month_index
    ).astype(np.int64)
    frame["sessions_90d"] = rng.poisson(12, n).astype(np.int64)
    frame["sessions_30d"] = rng.binomial(frame["sessions_90d"], 0.33).astype(np.int64)
    frame["session_minutes_30d"] = frame["sessions_30d"] * rng.gamma(4, 3.5, n)
    frame["usage_trend"] = np.where(
        frame["sessions_90d"] > 0, frame["sessions_30d"] / (frame["sessions_90d"] / 3), 0.0
    )
    frame["days_since_last_session"] = rng.integers(0, 60, n).astype(np.int64)
    frame["support_tickets_90d"] = rng.poisson(0.5, n).astype(np.int64)
    frame["support_tickets_30d"] = rng.binomial(frame["support_tickets_90d"], 0.4).astype(np.int64)
    frame["late_payments_90d"] = rng.poisson(0.4, n).astype(np.int64)
    frame["payments_90d"] = (3 - np.minimum(frame["late_payments_90d"], 3)).astype(np.int64)
    frame["online_purchases_90d"] = rng.poisson(2, n).astype(np.int64)
    frame["online_spend_90d"] = frame["online_purchases_90d"] * rng.gamma(3, 12, n)

    logit = (
        -3.0
        + 1.2 * (frame["contract"] == "month_to_month")
        - 0.8 * (frame["contract"] == "two_year")
        + 0.7 * frame["late_payments_90d"]
        + 0.5 * frame["support_tickets_30d"]
        - 1.0 * np.minimum(frame["usage_trend"], 2.0)
        + 0.02 * frame["days_since_last_session"]
        - 0.01 * (frame["age"] - 40)
    )
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    ordered = ["customer_id", "snapshot_date", "churned", *[f["name"] for f in feature_list()]]
    return frame[ordered]


def training_params(**overrides: Any) -> dict[str, Any]:
    """Small, quick ``training`` parameters for tests (``overrides`` replace top-level keys)."""
    params: dict[str, Any] = {
        "target": "churned",
        "time_column": "snapshot_date",
        "id_columns": ["customer_id"],
        "seed": 7,
        "n_jobs": 1,
        "class_weighting": "sqrt",
        "selection_metric": "pr_auc",
        "split": {"validation_months": 2, "test_months": 2, "purge_days": 0, "min_train_months": 3},
        "sampling": {"max_training_rows": None},
        "candidates": {
            "logistic_regression": {"C": 1.0, "max_iter": 300},
            "xgboost": {
                "tree_method": "hist",
                "max_estimators": 60,
                "early_stopping_rounds": 10,
                "eval_metric": "aucpr",
                "max_bin": 64,
                "monotone_increasing": ["late_payments_90d"],
                "search": {"n_trials": 2, "timeout_s": 60},
            },
        },
        "model_logging": {"serialization_format": "skops", "input_example_rows": 3},
    }
    params.update(overrides)
    return params


def evaluation_params(**overrides: Any) -> dict[str, Any]:
    """Small ``evaluation`` parameters for tests (``overrides`` replace top-level keys)."""
    params: dict[str, Any] = {
        "business": {
            "retained_customer_value": 500.0,
            "offer_cost": 40.0,
            "offer_success_rate": 0.3,
        },
        "threshold": {"curve_points": 50},
        "calibration": {"n_bins": 5, "strategy": "quantile"},
        "segments": {
            "columns": ["contract", "region"],
            "age_column": "age",
            "age_band_edges": [18, 30, 45, 60],
            "min_rows": 30,
        },
        "shap": {
            "sample_rows": 300,
            "background_rows": 100,
            "additivity_tolerance": 1e-3,
            "max_display": 10,
        },
        "behaviour": {
            "directional": [
                {
                    "feature": "late_payments_90d",
                    "direction": "increasing",
                    "values": [0, 1, 2, 3, 4, 6],
                }
            ],
            "sample_rows": 50,
            "tolerance": 1e-9,
        },
        "reference_profile": {"n_bins": 5},
        "gate": {
            "metric": "pr_auc",
            "minimums": {"roc_auc": 0.65, "pr_auc_lift": 2.0},
            "max_degradation": 0.01,
            "require_behaviour_checks": True,
        },
        "registry": {
            "model_name": "churn_model_test",
            "champion_alias": "champion",
            "challenger_alias": "challenger",
        },
    }
    params.update(overrides)
    return params


def training_config(**overrides: Any):
    """Validated :class:`TrainingParams` from :func:`training_params`."""
    from churn_mlops.pipelines.training.params import parse_training_params

    return parse_training_params(training_params(**overrides))


def feature_specs():
    """Validated feature list (``FeatureSpec`` objects) of :func:`feature_list`."""
    from churn_mlops.contracts.features import parse_feature_list

    return parse_feature_list(feature_list())


def evaluation_setup(evaluation: dict[str, Any] | None = None, **training_overrides: Any):
    """Validated ``EvaluationSetup`` from :func:`evaluation_params` and :func:`training_params`."""
    from churn_mlops.pipelines.evaluation.nodes import validate_evaluation_parameters

    return validate_evaluation_parameters(
        evaluation if evaluation is not None else evaluation_params(),
        training_params(**training_overrides),
        feature_list(),
    )

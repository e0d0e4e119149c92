"""Constants and small helpers shared by the evaluation nodes."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.pipelines.training.errors import FeatureContractError
from churn_mlops.pipelines.training.params import TrainingParams

logger = logging.getLogger(__name__)

#: Column of the prediction tables holding the churn probability.
SCORE = "score"


#: Test metrics that ``compute_test_metrics`` reports (what gate minimums may name).
TEST_METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "log_loss",
    "prevalence",
    "pr_auc_lift",
    "f1",
    "precision",
    "recall",
    "accuracy",
    "flagged_share",
    "threshold",
    "net_value",
    "net_value_per_customer",
    "rows",
)


def key_columns(cfg: TrainingParams) -> list[str]:
    return [*cfg.id_columns, cfg.time_column]


def require_columns(frame: pd.DataFrame, columns: list[str], table: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise FeatureContractError(
            f"{table} lacks column(s) {missing}; present: {sorted(map(str, frame.columns))}"
        )


def column_owners(preprocess: Any) -> list[str]:
    """The original feature behind each output column of the fitted ColumnTransformer."""
    owners: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "categorical":
            for column, categories in zip(columns, transformer.categories_, strict=True):
                owners.extend([column] * len(categories))
        else:
            owners.extend(columns)
    return owners


def display_names(preprocess: Any) -> list[str]:
    """Readable names of the output columns: ``contract=one_year``, ``late_payments_90d``."""
    names: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == "categorical":
            for column, categories in zip(columns, transformer.categories_, strict=True):
                names.extend(f"{column}={category}" for category in categories)
        else:
            names.extend(columns)
    return names


def as_number(value: Any) -> float | int | None:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "n/a" if not np.isfinite(value) else f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    return str(value)

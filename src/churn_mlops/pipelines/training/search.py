"""The XGBoost hyperparameter search's pieces: the space's midpoint, a trial's suggestion, the
summary of a finished Optuna study (the node itself is ``nodes.tune_xgboost``)."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def midpoint(space: Any) -> dict[str, float | int]:
    """The centre of the search space (geometric for log-scaled ranges): the first trial."""
    point: dict[str, float | int] = {}
    for name, rng in space:
        if name == "max_depth":
            point[name] = (rng.low + rng.high) // 2
        elif rng.log:
            point[name] = float(math.sqrt(rng.low * rng.high))
        else:
            point[name] = (rng.low + rng.high) / 2
    return point


def suggest_hyperparameters(trial: Any, space: Any) -> dict[str, Any]:
    """One Optuna trial's hyperparameters, drawn from ``training.candidates.xgboost.search``."""
    return {
        "max_depth": trial.suggest_int("max_depth", space.max_depth.low, space.max_depth.high),
        **{
            name: trial.suggest_float(name, rng.low, rng.high, log=rng.log)
            for name, rng in (
                ("learning_rate", space.learning_rate),
                ("min_child_weight", space.min_child_weight),
                ("subsample", space.subsample),
                ("colsample_bytree", space.colsample_bytree),
                ("reg_lambda", space.reg_lambda),
            )
        },
    }


def summarise_search(
    study: Any, metric: str, weight: float, constraints: tuple[int, ...]
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """The search result (best parameters, trees, every trial) and the per-trial history."""
    finished = [t for t in study.trials if t.value is not None]
    best = study.best_trial
    logger.info(
        "XGBoost search: %d trials, best validation %s %.4f with %d trees (trial %d)",
        len(finished),
        metric,
        best.value,
        best.user_attrs["n_estimators"],
        best.number,
    )
    search = {
        "metric": metric,
        "best_value": float(best.value),
        "best_trial": best.number,
        "best_params": dict(best.params),
        "best_n_estimators": int(best.user_attrs["n_estimators"]),
        "scale_pos_weight": weight,
        "monotone_constraints": list(constraints),
        "trials": [
            {
                "number": t.number,
                "value": float(t.value),
                "params": dict(t.params),
                "n_estimators": int(t.user_attrs["n_estimators"]),
                "fit_seconds": float(t.user_attrs["fit_seconds"]),
            }
            for t in finished
        ],
    }
    running_best = np.maximum.accumulate([t.value for t in finished])
    history = {
        f"trial_{metric}": [{"value": float(t.value), "step": i} for i, t in enumerate(finished)],
        f"best_{metric}": [{"value": float(v), "step": i} for i, v in enumerate(running_best)],
    }
    return search, history

"""Nodes of the training pipeline: time split, candidate fitting, bounded search, winner choice.

Every candidate is one scikit-learn ``Pipeline`` with the steps ``preprocess`` (a
``ColumnTransformer`` built only from ``OneHotEncoder`` and ``StandardScaler``) and ``model``, so
the object that wins is the object that is evaluated, explained, exported and served.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn_mlops.contracts.features import FeatureSpec, parse_feature_list
from churn_mlops.fingerprint import fingerprint_table
from churn_mlops.model_metrics import ranking_metrics
from churn_mlops.pipelines.training.errors import FeatureContractError, TimeSplitError
from churn_mlops.pipelines.training.params import TrainingParams, parse_training_params
from churn_mlops.pipelines.training.random_split import split_stratified_random
from churn_mlops.pipelines.training.search import (
    midpoint,
    suggest_hyperparameters,
    summarise_search,
)
from churn_mlops.progress import progress

logger = logging.getLogger(__name__)

#: Names of the two candidates (keys of every per-candidate mapping).
BASELINE = "logistic_regression"
XGBOOST = "xgboost"


# --------------------------------------------------------------------------- parameters


def validate_training_parameters(
    params: dict[str, Any], features: list[dict[str, Any]]
) -> tuple[TrainingParams, list[FeatureSpec]]:
    """Validate the ``training`` parameters and the feature list once, before any work.

    Besides each value's own rules, checks that key and label columns are not features and
    that monotone constraints name numeric features.

    Args:
        params: The ``training`` parameters.
        features: The ``feature_engineering.features`` list (the feature contract).

    Returns:
        The validated parameters and feature list, which every later node receives.

    Raises:
        TrainingConfigError: A parameter is unknown, missing or out of range.
        FeatureContractError: The feature list and the parameters disagree.
    """
    cfg = parse_training_params(params)
    specs = parse_feature_list(features)
    names = {s.name for s in specs}
    reserved = sorted(names & {*cfg.id_columns, cfg.time_column, cfg.target})
    if reserved:
        raise FeatureContractError(
            f"feature_engineering.features lists {reserved}, which training uses as key or "
            "label columns (training.id_columns, time_column, target); they are never features"
        )
    numeric = {s.name for s in specs if s.kind == "numeric"}
    unknown = sorted(set(cfg.candidates.xgboost.monotone_increasing) - numeric)
    if unknown:
        raise FeatureContractError(
            f"training.candidates.xgboost.monotone_increasing names {unknown}, which are not "
            f"numeric features; numeric features: {sorted(numeric)}"
        )
    return cfg, specs


# --------------------------------------------------------------------------- split


def split_by_snapshot_month(
    model_input_table: pd.DataFrame, specs: list[FeatureSpec], cfg: TrainingParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split ``model_input_table`` into train, validation and test by snapshot month.

    The last ``test_months`` snapshot months are the test split, the ``validation_months``
    before them the validation split, and every earlier month the training split. A row whose
    label window (``purge_days`` from its snapshot) reaches into the next split is dropped, so
    nothing observed after a split begins is used to fit or tune on an earlier one.

    Args:
        model_input_table: One row per (customer, snapshot) with keys, label and features.
        specs: The validated feature list (the feature contract).
        cfg: The validated ``training`` parameters.

    Returns:
        ``train_split``, ``validation_split``, ``test_split`` (index reset) and a summary
        with months, row counts, churn rates, purged rows and the data fingerprint.

    Raises:
        FeatureContractError: A key, label or feature column is missing.
        TimeSplitError: There are not enough snapshot months for the configured split.
    """
    _require_columns(
        model_input_table,
        [*cfg.id_columns, cfg.time_column, cfg.target, *[s.name for s in specs]],
        table="model_input_table",
    )
    strategy = cfg.split.strategy
    if strategy == "auto":
        one_date = model_input_table[cfg.time_column].nunique() <= 1
        strategy = "stratified_random" if one_date else "time"
    if strategy == "stratified_random":
        return split_stratified_random(model_input_table, cfg)
    months = model_input_table[cfg.time_column].dt.to_period("M")
    validation_start, test_start = _split_starts(months, cfg)
    snapshot = model_input_table[cfg.time_column]
    label_end = snapshot + pd.Timedelta(days=cfg.split.purge_days)

    in_test = months >= test_start
    in_validation = (months >= validation_start) & ~in_test
    in_train = months < validation_start
    purge_train = in_train & (label_end > validation_start.to_timestamp())
    purge_validation = in_validation & (label_end > test_start.to_timestamp())

    train = model_input_table.loc[in_train & ~purge_train].reset_index(drop=True)
    validation = model_input_table.loc[in_validation & ~purge_validation].reset_index(drop=True)
    test = model_input_table.loc[in_test].reset_index(drop=True)
    for name, frame in (("train", train), ("validation", validation), ("test", test)):
        _require_both_classes(name, frame, cfg)
    summary = {
        "strategy": "time",
        "data_fingerprint": fingerprint_table(model_input_table),
        "rows": len(model_input_table),
        "purge_days": cfg.split.purge_days,
        "purged_rows": {
            "train": int(purge_train.sum()),
            "validation": int(purge_validation.sum()),
        },
        "splits": {
            name: _describe_split(frame, cfg)
            for name, frame in (("train", train), ("validation", validation), ("test", test))
        },
    }
    logger.info(
        "Time split: train %s (%d rows), validation %s (%d rows), test %s (%d rows)",
        summary["splits"]["train"]["months"],
        len(train),
        summary["splits"]["validation"]["months"],
        len(validation),
        summary["splits"]["test"]["months"],
        len(test),
    )
    return train, validation, test, summary


def sample_training_rows(train_split: pd.DataFrame, cfg: TrainingParams) -> pd.DataFrame:
    """Sample the training split down to ``sampling.max_training_rows`` rows (seeded).

    Args:
        train_split: The training split.
        cfg: The validated ``training`` parameters.

    Returns:
        The sampled rows in their original order, or ``train_split`` when it is small enough.
    """
    limit = cfg.sampling.max_training_rows
    if limit is None or len(train_split) <= limit:
        return train_split
    logger.info("Sampling %d of %d training rows", limit, len(train_split))
    return train_split.sample(n=limit, random_state=cfg.seed).sort_index().reset_index(drop=True)


# --------------------------------------------------------------------------- candidates


def build_preprocessor(specs: list[FeatureSpec]) -> ColumnTransformer:
    """The served encoding: one-hot categoricals (fixed categories) and standardised numerics.

    Only ``OneHotEncoder(handle_unknown="ignore")`` and ``StandardScaler`` are used so that
    serving can compile the transform into a few array operations; unknown categories encode
    as all zeros instead of failing. Columns not in the feature list are dropped.

    Args:
        specs: The validated feature list.

    Returns:
        An unfitted ``ColumnTransformer`` with transformers ``categorical`` and ``numeric``.
    """
    categorical = [s for s in specs if s.kind == "categorical"]
    numeric = [s.name for s in specs if s.kind == "numeric"]
    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(
                    categories=[list(s.categories or []) for s in categorical],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                [s.name for s in categorical],
            ),
            ("numeric", StandardScaler(), numeric),
        ],
        remainder="drop",
    )


def positive_class_weight(labels: pd.Series, cfg: TrainingParams) -> float:
    """Weight of a positive row relative to a negative one under ``class_weighting``."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if cfg.class_weighting == "none" or positives == 0:
        return 1.0
    ratio = negatives / positives
    return float(ratio if cfg.class_weighting == "balanced" else math.sqrt(ratio))


def fit_logistic_regression(
    training_sample: pd.DataFrame, specs: list[FeatureSpec], cfg: TrainingParams
) -> Pipeline:
    """Fit the logistic-regression baseline (class-weighted) as a served-shape ``Pipeline``.

    Args:
        training_sample: Training rows.
        specs: The validated feature list.
        cfg: The validated ``training`` parameters.

    Returns:
        The fitted ``Pipeline(preprocess, model)``.
    """
    X, y = _features_and_label(training_sample, specs, cfg, table="training_sample")
    weight = positive_class_weight(y, cfg)
    lr = cfg.candidates.logistic_regression
    model = LogisticRegression(
        C=lr.C, max_iter=lr.max_iter, class_weight={0: 1.0, 1: weight}, random_state=cfg.seed
    )
    started = time.perf_counter()
    pipeline = Pipeline([("preprocess", build_preprocessor(specs)), ("model", model)]).fit(X, y)
    logger.info(
        "Fitted logistic regression on %d rows in %.1f s", len(X), time.perf_counter() - started
    )
    return pipeline


def tune_xgboost(
    training_sample: pd.DataFrame,
    validation_split: pd.DataFrame,
    specs: list[FeatureSpec],
    cfg: TrainingParams,
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """Search XGBoost hyperparameters with Optuna (TPE), early stopping on the validation split.

    The first trial is the midpoint of the search space, so even a one-trial budget gives a
    sensible model. Each trial fits on the training rows and stops when the validation
    ``eval_metric`` has not improved for ``early_stopping_rounds`` rounds; its value is the
    validation ``selection_metric``.

    Args:
        training_sample: Training rows.
        validation_split: Validation rows (early stopping and trial scoring).
        specs: The validated feature list.
        cfg: The validated ``training`` parameters.

    Returns:
        The search result (best parameters, best number of trees, every trial) and the
        per-trial validation metric history for ``MlflowMetricsHistoryDataset``.
    """
    import optuna

    xgb_cfg = cfg.candidates.xgboost
    X, y = _features_and_label(training_sample, specs, cfg, table="training_sample")
    X_val, y_val = _features_and_label(validation_split, specs, cfg, table="validation_split")
    preprocess = build_preprocessor(specs).fit(X)
    train_matrix = preprocess.transform(X).astype(np.float32)
    validation_matrix = preprocess.transform(X_val).astype(np.float32)
    constraints = _monotone_constraints(preprocess, xgb_cfg.monotone_increasing)
    weight = positive_class_weight(y, cfg)
    space = xgb_cfg.search.space
    metric = cfg.selection_metric

    def objective(trial: optuna.Trial) -> float:
        hyper = suggest_hyperparameters(trial, space)
        started = time.perf_counter()
        model = _xgb_classifier(
            cfg, hyper, weight, constraints, n_estimators=xgb_cfg.max_estimators
        )
        model.set_params(early_stopping_rounds=xgb_cfg.early_stopping_rounds)
        model.fit(train_matrix, y, eval_set=[(validation_matrix, y_val)], verbose=False)
        value = ranking_metrics(y_val, model.predict_proba(validation_matrix)[:, 1])[metric]
        trial.set_user_attr("n_estimators", int(model.best_iteration) + 1)
        trial.set_user_attr("fit_seconds", round(time.perf_counter() - started, 3))
        return value

    # One progress bar instead of Optuna's log line per trial (the trials go to MLflow).
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=cfg.seed)
    )
    study.enqueue_trial(midpoint(space))
    n_trials = xgb_cfg.search.n_trials
    with progress(n_trials, "tuning", "trial") as bar:

        def show(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            bar.update(1)
            if any(t.value is not None for t in study.trials):
                bar.set_postfix_str(f"best {metric} {study.best_value:.4f}", refresh=False)

        study.optimize(
            objective, n_trials=n_trials, timeout=xgb_cfg.search.timeout_s, callbacks=[show]
        )
    return summarise_search(study, metric, weight, constraints)


def fit_xgboost(
    training_sample: pd.DataFrame,
    xgboost_search: dict[str, Any],
    specs: list[FeatureSpec],
    cfg: TrainingParams,
) -> Pipeline:
    """Fit XGBoost with the searched hyperparameters and number of trees.

    Refitting with ``n_estimators`` fixed at the early-stopped count gives a plain estimator
    (no ``early_stopping_rounds``, no trees past the best iteration), which is what serving
    and the SHAP explainer expect.

    Args:
        training_sample: Training rows.
        xgboost_search: Output of :func:`tune_xgboost`.
        specs: The validated feature list.
        cfg: The validated ``training`` parameters.

    Returns:
        The fitted ``Pipeline(preprocess, model)``.
    """
    X, y = _features_and_label(training_sample, specs, cfg, table="training_sample")
    preprocess = build_preprocessor(specs).fit(X)
    model = _xgb_classifier(
        cfg,
        xgboost_search["best_params"],
        xgboost_search["scale_pos_weight"],
        tuple(xgboost_search["monotone_constraints"]),
        n_estimators=xgboost_search["best_n_estimators"],
    )
    started = time.perf_counter()
    model.fit(preprocess.transform(X).astype(np.float32), y, verbose=False)
    logger.info(
        "Fitted XGBoost (%d trees) on %d rows in %.1f s",
        xgboost_search["best_n_estimators"],
        len(X),
        time.perf_counter() - started,
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


# --------------------------------------------------------------------------- selection


def score_candidates(
    baseline_model: Pipeline,
    xgboost_model: Pipeline,
    validation_split: pd.DataFrame,
    specs: list[FeatureSpec],
    cfg: TrainingParams,
) -> dict[str, dict[str, float]]:
    """Score both candidates on the validation split with the shared ranking metrics.

    Returns:
        ``{candidate name: {metric: value}}``.
    """
    X_val, y_val = _features_and_label(validation_split, specs, cfg, table="validation_split")
    scores = {
        name: ranking_metrics(y_val, model.predict_proba(X_val)[:, 1])
        for name, model in ((BASELINE, baseline_model), (XGBOOST, xgboost_model))
    }
    for name, metrics in scores.items():
        logger.info(
            "Validation %s: PR AUC %.4f, ROC AUC %.4f", name, metrics["pr_auc"], metrics["roc_auc"]
        )
    return scores


def select_best_candidate(
    baseline_model: Pipeline,
    xgboost_model: Pipeline,
    candidate_scores: dict[str, dict[str, float]],
    cfg: TrainingParams,
) -> tuple[Pipeline, dict[str, Any]]:
    """Pick the candidate with the best validation ``selection_metric`` (ties keep the baseline).

    Returns:
        The winning ``Pipeline`` (``trained_model``) and a summary naming the winner, its
        metric value and its lead over the other candidate.
    """
    metric = cfg.selection_metric
    models = {BASELINE: baseline_model, XGBOOST: xgboost_model}
    ranked = sorted(
        models, key=lambda name: (candidate_scores[name][metric], name == BASELINE), reverse=True
    )
    winner, runner_up = ranked[0], ranked[1]
    summary = {
        "winner": winner,
        "metric": metric,
        "value": candidate_scores[winner][metric],
        "runner_up": runner_up,
        "runner_up_value": candidate_scores[runner_up][metric],
        "lead": candidate_scores[winner][metric] - candidate_scores[runner_up][metric],
        "estimator": type(models[winner].named_steps["model"]).__name__,
        "validation_metrics": candidate_scores[winner],
    }
    logger.info(
        "Winner: %s (validation %s %.4f, lead %.4f over %s)",
        winner,
        metric,
        summary["value"],
        summary["lead"],
        runner_up,
    )
    return models[winner], summary


def package_candidate_runs(
    baseline_model: Pipeline,
    xgboost_model: Pipeline,
    candidate_scores: dict[str, dict[str, float]],
    xgboost_search: dict[str, Any],
    winner: dict[str, Any],
    training_sample: pd.DataFrame,
    specs: list[FeatureSpec],
    cfg: TrainingParams,
) -> dict[str, Any]:
    """Assemble what the candidate-runs dataset logs: one nested MLflow run per candidate.

    Returns:
        ``{"input_example", "logging", "candidates": {name: {"model", "params", "metrics",
        "tags"}}}`` as read by :class:`churn_mlops.datasets.MlflowCandidateRunsDataset`.
    """
    lr_cfg = cfg.candidates.logistic_regression
    weight = positive_class_weight(training_sample[cfg.target], cfg)
    candidate_params = {
        BASELINE: {
            "C": lr_cfg.C,
            "max_iter": lr_cfg.max_iter,
            "positive_class_weight": weight,
            "training_rows": len(training_sample),
        },
        XGBOOST: {
            **xgboost_search["best_params"],
            "n_estimators": xgboost_search["best_n_estimators"],
            "scale_pos_weight": xgboost_search["scale_pos_weight"],
            "tree_method": cfg.candidates.xgboost.tree_method,
            "search_trials": len(xgboost_search["trials"]),
            "training_rows": len(training_sample),
        },
    }
    models = {BASELINE: baseline_model, XGBOOST: xgboost_model}
    return {
        "input_example": training_sample[[s.name for s in specs]]
        .head(cfg.model_logging.input_example_rows)
        .reset_index(drop=True),
        "logging": cfg.model_logging.model_dump(),
        "candidates": {
            name: {
                "model": models[name],
                "params": candidate_params[name],
                "metrics": {f"validation_{k}": v for k, v in candidate_scores[name].items()},
                "tags": {
                    "candidate": name,
                    "estimator": type(models[name].named_steps["model"]).__name__,
                    "winner": str(name == winner["winner"]).lower(),
                },
            }
            for name in (BASELINE, XGBOOST)
        },
    }


# --------------------------------------------------------------------------- helpers


def _require_columns(frame: pd.DataFrame, columns: list[str], *, table: str) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in frame.columns]
    if missing:
        raise FeatureContractError(
            f"{table} lacks column(s) {missing}; expected keys, label and every feature of "
            f"feature_engineering.features (present: {sorted(map(str, frame.columns))})"
        )


def _features_and_label(
    frame: pd.DataFrame, specs: list[FeatureSpec], cfg: TrainingParams, *, table: str
) -> tuple[pd.DataFrame, pd.Series]:
    names = [s.name for s in specs]
    _require_columns(frame, [*names, cfg.target], table=table)
    labels = frame[cfg.target]
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise FeatureContractError(
            f"{table}.{cfg.target} must be 0/1; row {row} holds {labels.iloc[row]!r}"
        )
    return frame[names], labels.astype(int)


def _monotone_constraints(preprocess: ColumnTransformer, increasing: list[str]) -> tuple[int, ...]:
    wanted = {f"numeric__{name}" for name in increasing}
    return tuple(int(name in wanted) for name in preprocess.get_feature_names_out())


def _xgb_classifier(
    cfg: TrainingParams,
    hyper: dict[str, Any],
    weight: float,
    constraints: tuple[int, ...],
    *,
    n_estimators: int,
) -> Any:
    from xgboost import XGBClassifier

    xgb_cfg = cfg.candidates.xgboost
    return XGBClassifier(
        n_estimators=n_estimators,
        tree_method=xgb_cfg.tree_method,
        max_bin=xgb_cfg.max_bin,
        eval_metric=xgb_cfg.eval_metric,
        scale_pos_weight=weight,
        monotone_constraints=constraints if any(constraints) else None,
        n_jobs=cfg.n_jobs,
        random_state=cfg.seed,
        **hyper,
    )


def _split_starts(months: pd.Series, cfg: TrainingParams) -> tuple[pd.Period, pd.Period]:
    """First month of the validation and of the test split; too few months is an error."""
    ordered = sorted(months.unique())
    needed = cfg.split.min_train_months + cfg.split.validation_months + cfg.split.test_months
    if len(ordered) < needed:
        raise TimeSplitError(
            f"model_input_table.{cfg.time_column} has {len(ordered)} snapshot months "
            f"({_month_range(ordered)}); the split needs at least {needed} "
            f"(training.split.min_train_months={cfg.split.min_train_months} + "
            f"validation_months={cfg.split.validation_months} + "
            f"test_months={cfg.split.test_months})"
        )
    test_start = ordered[-cfg.split.test_months]
    return ordered[-(cfg.split.test_months + cfg.split.validation_months)], test_start


def _require_both_classes(name: str, frame: pd.DataFrame, cfg: TrainingParams) -> None:
    if frame.empty or frame[cfg.target].nunique() < 2:
        raise TimeSplitError(
            f"the {name} split of model_input_table has {len(frame)} rows and labels "
            f"{sorted(frame[cfg.target].unique().tolist())}; both classes are needed "
            f"(check training.split.purge_days={cfg.split.purge_days} and the month counts)"
        )


def _describe_split(frame: pd.DataFrame, cfg: TrainingParams) -> dict[str, Any]:
    months = sorted(frame[cfg.time_column].dt.to_period("M").unique())
    return {
        "months": [str(m) for m in months],
        "first_snapshot": str(frame[cfg.time_column].min().date()),
        "last_snapshot": str(frame[cfg.time_column].max().date()),
        "rows": len(frame),
        "positives": int(frame[cfg.target].sum()),
        "positive_rate": float(frame[cfg.target].mean()),
    }


def _month_range(months: list[pd.Period]) -> str:
    return f"{months[0]}..{months[-1]}" if months else "none"

"""Nodes of the ``batch_scoring`` pipeline: who to call this month, and why.

Every active customer as of a date is scored by the champion on the features Feast gives for
that date (the same point-in-time lookup as training), ranked by the expected net value of a
retention offer, and explained by the top SHAP contributions of the champion itself.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churn_mlops.feature_store.config import FeatureStoreConfig
from churn_mlops.feature_store.repository import FeatureRepository
from churn_mlops.pipelines.batch_scoring.params import BatchScoringConfig, BusinessValues
from churn_mlops.pipelines.evaluation.common import column_owners
from churn_mlops.serving.prediction_log import utc_now_iso

logger = logging.getLogger(__name__)


class BatchScoringError(ValueError):
    """Nothing to score at the requested date, or a model the explainer cannot read."""


def select_active_customers(
    snapshot_spine: ir.Table, parameters: dict[str, Any], config: FeatureStoreConfig
) -> pd.DataFrame:
    """The customers active at the scoring date: those of the latest snapshot on or before it.

    Returns:
        ``customer_id`` and the scoring time (``snapshot_date`` column) per active customer.

    Raises:
        BatchScoringError: no snapshot lies on or before ``as_of``.
    """
    cfg = BatchScoringConfig.model_validate(parameters)
    ts = config.timestamp_field
    spine = snapshot_spine.select(config.join_key, ts).to_pandas()
    as_of = pd.Timestamp(cfg.as_of) if cfg.as_of else spine[ts].max()
    eligible = spine.loc[spine[ts] <= as_of, ts]
    if eligible.empty:
        raise BatchScoringError(
            f"batch_scoring.as_of = {cfg.as_of}: no snapshot on or before it (first snapshot "
            f"{spine[ts].min()})"
        )
    latest = eligible.max()
    active = spine.loc[spine[ts] == latest, [config.join_key]].drop_duplicates()
    active[ts] = as_of
    logger.info("%d customers active at %s (snapshot %s)", len(active), as_of.date(), latest.date())
    return active.sort_values(config.join_key).reset_index(drop=True)


def fetch_scoring_features(
    feature_repository: FeatureRepository,
    active_customers: pd.DataFrame,
    config: FeatureStoreConfig,
) -> pd.DataFrame:
    """The features of each active customer as of the scoring date, from the offline store."""
    return feature_repository.historical_features(
        active_customers, timestamp_field=config.timestamp_field
    )


def _contributions(
    pipeline: Any, features: pd.DataFrame, background: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    """SHAP log-odds contributions per feature (one-hot columns summed), and feature names.

    ``background`` (the whole scored population, first 1000 rows) is the reference of linear
    models, so a customer's reasons do not depend on who else is explained.
    """
    preprocess, model = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    transformed = np.asarray(preprocess.transform(features), dtype=np.float64)
    if hasattr(model, "get_booster"):
        # XGBoost's own exact TreeSHAP (what shap.TreeExplainer computes, in parallel C++:
        # about a hundred times faster on a monthly list; benchmarks/README.md).
        import xgboost

        best = getattr(model, "best_iteration", None)
        matrix = xgboost.DMatrix(transformed, nthread=model.n_jobs or 1)
        values = model.get_booster().predict(
            matrix,
            pred_contribs=True,
            iteration_range=(0, best + 1) if best is not None else (0, 0),
        )[:, :-1]  # the last column is the base value
    elif hasattr(model, "coef_"):
        import shap

        reference = np.asarray(preprocess.transform(background.iloc[:1000]), dtype=np.float64)
        masker = shap.maskers.Independent(reference)
        values = shap.LinearExplainer(model, masker).shap_values(transformed)
    else:
        raise BatchScoringError(
            f"no SHAP explainer for estimator {type(model).__name__}; expected a tree model "
            "(get_booster) or a linear model (coef_)"
        )
    owners = column_owners(preprocess)
    names = list(dict.fromkeys(owners))
    index = {name: i for i, name in enumerate(names)}
    grouped = np.zeros((len(features), len(names)))
    for column, owner in enumerate(owners):
        grouped[:, index[owner]] += np.asarray(values)[:, column]
    return grouped, names


def _champion_threshold(champion: dict[str, Any]) -> float:
    """The decision threshold in the champion's ``model_metadata.json``.

    Raises:
        BatchScoringError: the metadata has no ``threshold``.
    """
    metadata = champion.get("model_metadata") or {}
    if "threshold" not in metadata:
        raise BatchScoringError(
            f"model_metadata.json of {champion.get('model_name', 'the champion')} "
            f"v{champion.get('version')} has no 'threshold'; batch scoring labels customers at "
            "the threshold the evaluation pipeline registered"
        )
    return float(metadata["threshold"])


def score_customers(
    scoring_features: pd.DataFrame,
    champion: dict[str, Any],
    business: dict[str, Any],
    parameters: dict[str, Any],
    config: FeatureStoreConfig,
) -> pd.DataFrame:
    """The ranked retention list.

    ``champion`` is what ``monitoring_champion`` loads
    (:class:`~churn_mlops.datasets.champion.MlflowChampionDataset`): its ``model``, its
    ``model_metadata`` (the decision threshold) and its ``version``.

    Columns: ``rank``, ``customer_id``, ``probability``, ``label`` (at the champion's
    threshold), ``expected_net_value`` (``probability * offer_success_rate *
    retained_customer_value - offer_cost``: what an offer to this customer is worth),
    ``reason_1..k`` with ``reason_i_contribution`` (SHAP log-odds, largest raising churn risk
    first; empty for customers not explained, see ``reasons_for``), ``model_version``,
    ``scored_at`` (the scoring date); sorted by expected net value.
    """
    cfg = BatchScoringConfig.model_validate(parameters)
    values = BusinessValues.model_validate(business)
    names = config.feature_names
    features = scoring_features[names]
    pipeline = champion["model"]
    probability = pipeline.predict_proba(features)[:, 1]
    threshold = _champion_threshold(champion)
    table = pd.DataFrame(
        {
            config.join_key: scoring_features[config.join_key].to_numpy(),
            "probability": probability,
            "label": (probability >= threshold).astype("int64"),
            "expected_net_value": probability
            * values.offer_success_rate
            * values.retained_customer_value
            - values.offer_cost,
        }
    )
    explain = (
        np.ones(len(table), dtype=bool)
        if cfg.reasons_for == "all"
        else (table["expected_net_value"] > 0).to_numpy()
    )
    contributions, owners = _contributions(pipeline, features.loc[explain], features)
    k = min(cfg.top_reasons, len(owners))
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    for i in range(k):
        reason = np.full(len(table), None, dtype=object)
        value = np.full(len(table), np.nan)
        reason[explain] = np.asarray(owners, dtype=object)[order[:, i]]
        value[explain] = np.take_along_axis(contributions, order[:, i : i + 1], axis=1)[:, 0]
        table[f"reason_{i + 1}"] = reason
        table[f"reason_{i + 1}_contribution"] = value
    table["model_version"] = str(champion["version"])
    table["scored_at"] = scoring_features[config.timestamp_field].to_numpy()
    table = table.sort_values(
        ["expected_net_value", config.join_key], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1, dtype=np.int64))
    return table


def build_prediction_log(
    retention_list: pd.DataFrame, scoring_features: pd.DataFrame, config: FeatureStoreConfig
) -> pd.DataFrame:
    """The scores in the serving prediction-log format (one JSON object per line), so the
    monitoring pipeline reads batch and online predictions alike (docs/monitoring.md)."""
    features = scoring_features.set_index(config.join_key)[config.feature_names]
    run = uuid.uuid4().hex[:12]
    stamp = utc_now_iso()
    ids = retention_list[config.join_key]
    return pd.DataFrame(
        {
            "request_id": [f"batch-{run}-{cid}" for cid in ids],
            "timestamp": stamp,
            "model_version": retention_list["model_version"],
            "customer_id": ids,
            "features": features.loc[ids].to_dict(orient="records"),
            "score": retention_list["probability"],
            "label": retention_list["label"],
        }
    )


def summarize_batch_scores(retention_list: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Metrics logged to the MLflow run: customers scored, flagged, expected value."""
    positive = retention_list["expected_net_value"].clip(lower=0)
    metrics = {
        "customers_scored": float(len(retention_list)),
        "customers_flagged": float(retention_list["label"].sum()),
        "mean_probability": float(retention_list["probability"].mean()),
        "offers_worth_making": float((retention_list["expected_net_value"] > 0).sum()),
        "expected_net_value_of_worthwhile_offers": float(positive.sum()),
    }
    return {name: {"value": value, "step": 0} for name, value in metrics.items()}

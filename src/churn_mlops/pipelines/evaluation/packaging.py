"""Evaluation nodes: what a registered version carries (reference profile, metadata, golden
sample, tags)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sklearn.pipeline import Pipeline

from churn_mlops.contracts.artifacts import EXPECTED_COLUMN
from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.feature_store.config import FeatureStoreConfig
from churn_mlops.pipelines.evaluation.common import (
    SCORE,
    as_number,
    key_columns,
    require_columns,
)
from churn_mlops.pipelines.evaluation.params import (
    EvaluationSetup,
)
from churn_mlops.pipelines.training.errors import FeatureContractError

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- profile


def build_reference_profile(
    trained_model: Pipeline,
    train_split: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Training-data distribution of every feature and of the training score, for drift.

    Written to the ``reference_profile.json`` contract (docs/architecture.md) by
    ``churn_mlops.monitoring.profile``, which monitoring and serving read back.

    Returns:
        ``{"features": {name: profile}, "score": profile, "source", "rows"}``.
    """
    from churn_mlops.contracts.profile import profile_to_dict
    from churn_mlops.monitoring.profile import (
        build_reference_profile as profile_frame,
    )

    cfg = setup.evaluation
    specs = setup.features
    names = [s.name for s in specs]
    frame = train_split[names]
    scores = trained_model.predict_proba(frame)[:, 1]
    profile = profile_frame(
        frame,
        {s.name: s.kind for s in specs},
        n_bins=cfg.reference_profile.n_bins,
        scores=scores,
    )
    return {**profile_to_dict(profile), "source": "train_split", "rows": len(frame)}


# --------------------------------------------------------------------------- golden sample


def build_golden_sample(
    test_split: pd.DataFrame,
    test_predictions: pd.DataFrame,
    setup: EvaluationSetup,
) -> pd.DataFrame:
    """Test-split rows with the probability this evaluation gave each (``golden_sample.parquet``).

    Stored with the registered version by ``MlflowModelRegistrationDataset``, so that the
    export's parity check and ``kedro models rebuild`` compare with the version's own scores
    even after a later evaluation (of a challenger the gate refused, say) has overwritten the
    local ``test_split`` and ``test_predictions``.

    Returns:
        The key columns (``training.id_columns`` and ``time_column``), the features in
        metadata order and :data:`EXPECTED_COLUMN` (the ``score`` of ``test_predictions``):
        a draw of ``evaluation.golden_sample.rows`` rows seeded by its ``seed`` (the whole
        split when it is smaller), in test-split order.

    Raises:
        FeatureContractError: A column is missing, or the predictions are not one score per
            test-split row.
    """
    cfg = setup.evaluation.golden_sample
    keys = key_columns(setup.training)
    names = [s.name for s in setup.features]
    require_columns(test_split, [*keys, *names], "test_split")
    require_columns(test_predictions, [*keys, SCORE], "test_predictions")
    try:
        scored = test_split[[*keys, *names]].merge(
            test_predictions[[*keys, SCORE]], on=keys, how="inner", validate="one_to_one"
        )
    except pd.errors.MergeError as exc:
        raise FeatureContractError(f"the key columns {keys} are not unique: {exc}") from exc
    if len(scored) != len(test_split) or len(test_predictions) != len(test_split):
        raise FeatureContractError(
            f"test_predictions ({len(test_predictions)} rows) does not score each of the"
            f" {len(test_split)} test_split rows once (joined on {keys}: {len(scored)} match)"
        )
    rng = np.random.default_rng(cfg.seed)
    picked = np.sort(rng.choice(len(scored), size=min(cfg.rows, len(scored)), replace=False))
    sample = scored.iloc[picked].rename(columns={SCORE: EXPECTED_COLUMN})
    logger.info(
        "Golden sample: %d of %d test rows with their scores, stored with the version",
        len(sample),
        len(test_split),
    )
    return sample.reset_index(drop=True)


# --------------------------------------------------------------------------- packaging


def describe_feature_views(
    feature_store_params: dict[str, Any], setup: EvaluationSetup
) -> dict[str, Any]:
    """The Feast feature service and views that serve the model's features by customer id.

    Built from ``params:feature_store`` (what ``kedro run --pipeline feature_store``
    registers), so it needs no Feast registry. When those views do not hold exactly the
    model's features (bring-your-own-data with its own feature list), the model is not
    servable by id: the warning says why and the result is ``{}`` (a Kedro dataset cannot
    hold ``None``; :func:`build_model_metadata` records it as ``feature_store: null``).

    Returns:
        A :class:`FeatureStoreRequirement` as JSON data, or ``{}``.
    """
    try:
        config = FeatureStoreConfig.model_validate(
            {**feature_store_params, "features": tuple(setup.features)}
        )
    except ValidationError as exc:
        logger.warning(
            "the model's features are not those of feature_store.feature_views, so the model"
            " version records no feature views and cannot be served by customer id: %s",
            "; ".join(error["msg"] for error in exc.errors()),
        )
        return {}
    return config.requirement().model_dump(mode="json")


def build_model_metadata(
    trained_model: Pipeline,
    train_split: pd.DataFrame,
    decision_threshold: dict[str, Any],
    test_metrics: dict[str, float],
    setup: EvaluationSetup,
    feature_views: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``model_metadata.json`` (docs/architecture.md) without the version and run id.

    ``model_version`` and ``run_id`` are ``None`` here: only the registry knows them, and the
    registration dataset fills them in. Numeric ``min``/``max`` are the bounds declared in the
    feature list (``None`` when not declared); the training range is given as
    ``observed_min``/``observed_max``. ``feature_store`` is ``feature_views``: the Feast views
    serving the features by customer id (:func:`describe_feature_views`); ``None`` when
    there are none (``{}`` from that node).
    """
    cfg = setup.evaluation
    specs = setup.features
    feature_entries: list[dict[str, Any]] = []
    for spec in specs:
        entry: dict[str, Any] = {"name": spec.name, "kind": spec.kind}
        if spec.kind == "numeric":
            column = train_split[spec.name]
            entry.update(
                min=spec.min,
                max=spec.max,
                observed_min=as_number(column.min()),
                observed_max=as_number(column.max()),
            )
        else:
            entry["categories"] = list(spec.categories or [])
        entry["description"] = spec.description
        feature_entries.append(entry)
    return {
        "model_name": cfg.registry.model_name,
        "model_version": None,
        "run_id": None,
        "threshold": float(decision_threshold["threshold"]),
        "metrics": {k: (None if not np.isfinite(v) else float(v)) for k, v in test_metrics.items()},
        "estimator": type(trained_model.named_steps["model"]).__name__,
        "score": "predict_proba(X)[:, 1]: churn risk within the label horizon (class-weighted "
        "training; see the model card's calibration section)",
        "features": feature_entries,
        "feature_store": feature_views or None,
    }


def prepare_model_registration(
    trained_model: Pipeline,
    model_metadata: dict[str, Any],
    model_card: str,
    reference_profile: dict[str, Any],
    promotion_decision: dict[str, Any],
    split_summary: dict[str, Any],
    test_metrics: dict[str, float],
    test_split: pd.DataFrame,
    golden_sample: pd.DataFrame,
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Assemble what ``MlflowModelRegistrationDataset`` registers: model, files, tags, decision.

    The files are the metadata, the model card, the reference profile and the golden sample
    (:func:`build_golden_sample`).

    Tags carry the data fingerprint, feature list, training months, every test metric and
    the Feast feature service and views (``feature_store.*``, when the metadata names them)
    so that ``kedro models list`` and the MLflow UI can compare versions without opening runs.
    """
    cfg = setup.training
    names = [s.name for s in setup.features]
    splits = split_summary["splits"]
    tags = {
        "data_fingerprint": split_summary["data_fingerprint"],
        "features": ",".join(names),
        "estimator": model_metadata["estimator"],
        "threshold": f"{model_metadata['threshold']:.6f}",
        "train_months": f"{splits['train']['months'][0]}..{splits['train']['months'][-1]}",
        "test_months": f"{splits['test']['months'][0]}..{splits['test']['months'][-1]}",
        **{f"test.{k}": f"{v:.6f}" for k, v in test_metrics.items() if np.isfinite(v)},
        **_feature_store_tags(model_metadata),
    }
    return {
        "model": trained_model,
        "input_example": test_split[names]
        .head(cfg.model_logging.input_example_rows)
        .reset_index(drop=True),
        "logging": cfg.model_logging.model_dump(),
        "tags": tags,
        "metadata": model_metadata,
        "model_card": model_card,
        "reference_profile": reference_profile,
        "golden_sample": golden_sample,
        "decision": {
            "promote": promotion_decision["promote"],
            "reason": promotion_decision["reason"],
            "champion_version": promotion_decision["champion_version"],
        },
    }


def _feature_store_tags(model_metadata: dict[str, Any]) -> dict[str, str]:
    requirement = model_metadata.get("feature_store")
    if requirement is None:
        return {}
    return FeatureStoreRequirement.model_validate(requirement).registry_tags()

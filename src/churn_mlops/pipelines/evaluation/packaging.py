"""Evaluation nodes: what a registered version carries (reference profile, metadata, tags)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sklearn.pipeline import Pipeline

from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.feature_store.config import FeatureStoreConfig
from churn_mlops.pipelines.evaluation.common import (
    as_number,
)
from churn_mlops.pipelines.evaluation.params import (
    EvaluationSetup,
)

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
    setup: EvaluationSetup,
) -> dict[str, Any]:
    """Assemble what ``MlflowModelRegistrationDataset`` registers: model, files, tags, decision.

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

"""Build a small demo bundle from synthetic data that follows the feature contract.

For trying the serving app, for its tests and for the serving benchmark without running the
Kedro pipelines first::

    python -m churn_mlops.release.demo dist/demo-bundle --estimator xgboost

The bundle has the layout and JSON schemas of ``docs/architecture.md`` (model, metadata,
reference profile) but its model is trained on made-up rows; use the ``export`` pipeline for
a real one.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from churn_mlops.contracts.errors import ContractError
from churn_mlops.contracts.features import FeatureSpec, parse_feature_list
from churn_mlops.serving.bundle import (
    MANIFEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    PROFILE_FILE,
    checksums,
)

logger = logging.getLogger(__name__)

#: The feature contract the demo bundle follows: the project's own declaration (one home,
#: ``conf/base/parameters_feature_engineering.yml``), read from the checkout this module runs in.
CONTRACT_FILE = (
    Path(__file__).resolve().parents[3] / "conf" / "base" / ("parameters_feature_engineering.yml")
)


def load_contract(path: Path = CONTRACT_FILE) -> list[FeatureSpec]:
    """The feature contract (``feature_engineering.features``) declared in ``path``.

    Raises:
        ContractError: ``path`` is missing (the demo needs a project checkout) or invalid.
    """
    import yaml

    if not path.is_file():
        raise ContractError(
            f"{path}: the feature contract is not there; build demo bundles from a checkout of "
            "the project (the contract is declared in conf/base/parameters_feature_engineering.yml)"
        )
    params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    features = (params.get("feature_engineering") or {}).get("features")
    if not features:
        raise ContractError(f"{path}: no feature_engineering.features list")
    return parse_feature_list(features)


_CONTRACT = load_contract()

FEATURES: tuple[str, ...] = tuple(spec.name for spec in _CONTRACT)
"""The feature contract's names, in its order."""

CATEGORIES: dict[str, tuple[str, ...]] = {
    spec.name: tuple(spec.categories or ()) for spec in _CONTRACT if spec.kind == "categorical"
}
"""Allowed values of the categorical features."""

NUMERIC_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    spec.name: (spec.min, spec.max) for spec in _CONTRACT if spec.kind == "numeric"
}
"""Validity range of every numeric feature (None: unbounded)."""

CATEGORICAL = tuple(f for f in FEATURES if f in CATEGORIES)
NUMERIC = tuple(f for f in FEATURES if f not in CATEGORIES)


def make_synthetic_features(n_rows: int, *, seed: int = 0) -> tuple[Any, np.ndarray]:
    """Random feature rows with a churn label that depends on them plausibly.

    Returns:
        ``(features DataFrame in contract order, 0/1 label array)``.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = n_rows
    plan = rng.choice(CATEGORIES["plan"], n, p=[0.5, 0.35, 0.15])
    fee_base = np.select([plan == "basic", plan == "standard"], [20.0, 45.0], 80.0)
    sessions_90d = rng.poisson(rng.gamma(2.0, 12.0, n))
    sessions_30d = rng.binomial(sessions_90d, rng.beta(2, 4, n))
    support_90d = rng.poisson(0.8, n)
    data = {
        "tenure_days": rng.integers(0, 2500, n),
        "age": rng.integers(18, 91, n),
        "monthly_fee": np.round(fee_base + rng.normal(0, 5, n).clip(-15, 15), 2),
        "paperless_billing": rng.integers(0, 2, n),
        "region": rng.choice(CATEGORIES["region"], n),
        "plan": plan,
        "contract": rng.choice(CATEGORIES["contract"], n, p=[0.55, 0.25, 0.2]),
        "payment_method": rng.choice(CATEGORIES["payment_method"], n),
        "sessions_30d": sessions_30d,
        "sessions_90d": sessions_90d,
        "session_minutes_30d": np.round(sessions_30d * rng.gamma(2.0, 10.0, n), 1),
        "usage_trend": np.where(
            sessions_90d > 0, sessions_30d / np.maximum(sessions_90d / 3.0, 1e-9), 0.0
        ),
        "days_since_last_session": np.where(
            sessions_30d > 0, rng.integers(0, 30, n), rng.integers(30, 181, n)
        ),
        "support_tickets_30d": rng.binomial(support_90d, 0.4),
        "support_tickets_90d": support_90d,
        "late_payments_90d": rng.poisson(0.3, n),
        "payments_90d": rng.integers(0, 4, n),
        "online_purchases_90d": rng.poisson(1.0, n),
        "online_spend_90d": np.round(rng.gamma(1.5, 20.0, n), 2),
    }
    for spec in _CONTRACT:
        if spec.name not in data:  # a feature added to the contract: values in its range
            data[spec.name] = _generic_column(spec, rng, n)
    frame = pd.DataFrame({name: data[name] for name in FEATURES})
    logit = (
        -1.2
        + 1.1 * (data["contract"] == "month_to_month")
        - 0.6 * (data["contract"] == "two_year")
        - 0.0006 * data["tenure_days"]
        + 0.35 * data["support_tickets_30d"]
        + 0.5 * data["late_payments_90d"]
        - 0.7 * np.minimum(data["usage_trend"], 3.0)
        + 0.01 * data["days_since_last_session"]
        + 0.3 * (data["payment_method"] == "electronic_check")
    )
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return frame, label


def _generic_column(spec: FeatureSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Values for a contract feature the generator has no model of: its categories uniformly,
    or a gamma draw shifted to its lower bound and clipped to its upper one."""
    if spec.kind == "categorical":
        return rng.choice(spec.categories or [], n)
    values = rng.gamma(2.0, 10.0, n) + (spec.min or 0.0)
    return np.minimum(values, spec.max) if spec.max is not None else values


def build_pipeline(
    features: Any,
    label: np.ndarray,
    *,
    estimator: str = "xgboost",
    n_jobs: int = 2,
    seed: int = 0,
    scale_numeric: bool = True,
    n_estimators: int = 200,
) -> Any:
    """Fit the served object of the contract: ``Pipeline([preprocess, model])``.

    Args:
        features: Feature DataFrame (contract columns).
        label: 0/1 churn labels.
        estimator: ``"xgboost"`` or ``"logistic_regression"``.
        n_jobs: Threads for XGBoost.
        seed: Random seed of the estimator.
        scale_numeric: StandardScaler on numeric columns (else ``"passthrough"``).
        n_estimators: Trees of the XGBoost model.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL),
            ),
            ("numeric", StandardScaler() if scale_numeric else "passthrough", list(NUMERIC)),
        ]
    )
    if estimator == "xgboost":
        from xgboost import XGBClassifier

        model: Any = XGBClassifier(
            n_estimators=n_estimators,
            max_depth=5,
            learning_rate=0.08,
            tree_method="hist",
            n_jobs=n_jobs,
            random_state=seed,
        )
    elif estimator == "logistic_regression":
        model = LogisticRegression(max_iter=2000, random_state=seed)
    else:
        raise ValueError(
            f"estimator {estimator!r} is not known; expected 'xgboost' or 'logistic_regression'"
        )
    return Pipeline([("preprocess", preprocess), ("model", model)]).fit(features, label)


def build_metadata(
    *, model_name: str = "churn_model", model_version: str = "1", threshold: float = 0.35
) -> dict[str, Any]:
    """``model_metadata.json`` content for the contract features."""
    features: list[dict[str, Any]] = []
    for name in FEATURES:
        if name in CATEGORIES:
            features.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "categories": list(CATEGORIES[name]),
                    "description": f"customer {name.replace('_', ' ')}",
                }
            )
        else:
            low, high = NUMERIC_BOUNDS[name]
            features.append(
                {
                    "name": name,
                    "kind": "numeric",
                    "min": low,
                    "max": high,
                    "description": name.replace("_", " "),
                }
            )
    return {
        "model_name": model_name,
        "model_version": model_version,
        "run_id": "demo",
        "threshold": threshold,
        "metrics": {"pr_auc": None, "roc_auc": None},
        "features": features,
    }


def build_reference_profile(
    features: Any, scores: np.ndarray, *, n_bins: int = 10
) -> dict[str, Any]:
    """``reference_profile.json`` content, written by the monitoring profile builder."""
    from churn_mlops.contracts.profile import profile_to_dict
    from churn_mlops.monitoring.profile import build_reference_profile as profile_frame

    kinds = {name: "categorical" if name in CATEGORIES else "numeric" for name in FEATURES}
    return profile_to_dict(profile_frame(features, kinds, n_bins=n_bins, scores=scores))


def demo_pipeline_path(bundle_dir: Path) -> Path:
    """Where :func:`write_bundle` keeps the fitted Pipeline: next to the bundle, not in it
    (bundles ship ONNX only; tests and benchmarks compare against this Pipeline)."""
    bundle_dir = Path(bundle_dir)
    return bundle_dir.parent / f"{bundle_dir.name}.pipeline.joblib"


def load_demo_pipeline(bundle_dir: Path) -> Any:
    """The fitted Pipeline a demo bundle was converted from (a trusted local file)."""
    import joblib

    return joblib.load(demo_pipeline_path(bundle_dir))


def write_bundle(
    bundle_dir: Path,
    pipeline: Any,
    metadata: dict[str, Any],
    profile: dict[str, Any],
    *,
    background: Any,
) -> Path:
    """Write a bundle folder: the ONNX model and explainer, metadata, profile and manifest.

    Args:
        background: Feature rows (DataFrame) the conversion is checked on and whose mean is
            the reference point of linear explanations.
    """
    import joblib

    from churn_mlops.release.onnx_model import export_model_files

    bundle_dir = Path(bundle_dir)
    converted = export_model_files(pipeline, background=background)
    converted.write(bundle_dir / MODEL_FILE.parent)
    (bundle_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    (bundle_dir / PROFILE_FILE).write_text(json.dumps(profile, indent=2), encoding="utf-8")
    files = [MODEL_FILE.parent / name for name in sorted(converted.files)]
    manifest = {
        "bundle": bundle_dir.name,
        "model": {"version": metadata.get("model_version")},
        "files": checksums(bundle_dir, [*files, METADATA_FILE, PROFILE_FILE]),
    }
    (bundle_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    joblib.dump(pipeline, demo_pipeline_path(bundle_dir))
    return bundle_dir


def make_demo_bundle(
    bundle_dir: Path,
    *,
    estimator: str = "xgboost",
    n_rows: int = 3000,
    seed: int = 0,
    model_version: str = "1",
    n_jobs: int = 2,
    n_estimators: int = 200,
) -> Path:
    """Train on synthetic rows and write a complete demo bundle to ``bundle_dir``."""
    features, label = make_synthetic_features(n_rows, seed=seed)
    pipeline = build_pipeline(
        features, label, estimator=estimator, n_jobs=n_jobs, seed=seed, n_estimators=n_estimators
    )
    scores = pipeline.predict_proba(features)[:, 1]
    metadata = build_metadata(model_version=model_version)
    return write_bundle(
        bundle_dir,
        pipeline,
        metadata,
        build_reference_profile(features, scores),
        background=features.iloc[:500],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m churn_mlops.release.demo OUT_DIR [options]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle_dir", type=Path, help="folder to write the bundle to")
    parser.add_argument(
        "--estimator", choices=["xgboost", "logistic_regression"], default="xgboost"
    )
    parser.add_argument("--rows", type=int, default=3000, help="synthetic training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-version", default="1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s - %(message)s")
    out = make_demo_bundle(
        args.bundle_dir,
        estimator=args.estimator,
        n_rows=args.rows,
        seed=args.seed,
        model_version=args.model_version,
    )
    logger.info("demo bundle written to %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

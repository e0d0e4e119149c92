"""Nodes of the export pipeline: choose the golden sample and describe the serving bundle.

Both nodes are pure. The champion arrives loaded by ``MlflowChampionDataset``
(:mod:`churn_mlops.datasets.champion`); the bundle leaves as a description that
``ServingBundleDataset`` writes with :class:`churn_mlops.release.bundle.ServingBundleBuilder`
(ONNX model, manifest, parity gate) and moves into place; see ``docs/export.md``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from churn_mlops.contracts.artifacts import (
    EXPECTED_COLUMN,
    METADATA_FILE,
    MODEL_CARD_FILE,
    REFERENCE_PROFILE_FILE,
)
from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.pipelines.export.params import ExportParams, parse_export_params
from churn_mlops.pipelines.training.params import parse_training_params
from churn_mlops.release.errors import BundleContractError, GoldenSampleError
from churn_mlops.release.serving_image import (
    BUILD_ARGS_FILE,
    render_build_args,
    serving_build_args,
)

logger = logging.getLogger(__name__)

#: Column of the evaluation pipeline's prediction tables holding the probability.
SCORE = "score"


def _feature_names(champion: dict[str, Any]) -> list[str]:
    features = champion["model_metadata"].get("features") or []
    names = [f.get("name") for f in features if isinstance(f, dict)]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise BundleContractError(
            f"model_metadata.json of {champion['model_name']} v{champion['version']} has no"
            " usable 'features' list (each entry needs a 'name')"
        )
    return names


def _require(frame: pd.DataFrame, columns: list[str], table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GoldenSampleError(
            f"{table} lacks column(s) {missing}; present: {sorted(map(str, frame.columns))}"
        )


def _from_evaluation_outputs(
    test_split: pd.DataFrame, test_predictions: pd.DataFrame, keys: list[str], names: list[str]
) -> pd.DataFrame:
    _require(test_split, [*keys, *names], "test_split")
    _require(test_predictions, [*keys, SCORE], "test_predictions")
    if len(test_split) != len(test_predictions):
        raise GoldenSampleError(
            f"test_predictions has {len(test_predictions)} rows but test_split has"
            f" {len(test_split)}: they come from different evaluation runs"
        )
    merged = test_split[[*keys, *names]].merge(
        test_predictions[[*keys, SCORE]], on=keys, how="inner", validate="one_to_one"
    )
    if len(merged) != len(test_split):
        raise GoldenSampleError(
            f"only {len(merged)} of {len(test_split)} test_split rows have a score in"
            f" test_predictions (joined on {keys}): they come from different evaluation runs"
        )
    return merged.rename(columns={SCORE: EXPECTED_COLUMN})


def _within_schema(
    pool: pd.DataFrame, features: list[dict[str, Any]]
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Rows the app's request validation accepts, and what the others break, per feature.

    Mirrors the request models the app generates from the metadata: numeric values finite
    and within ``min``/``max``, categories among ``categories``, missing values only where the
    feature is ``nullable``.
    """
    keep = pd.Series(True, index=pool.index)
    refused: dict[str, dict[str, Any]] = {}
    for spec in features:
        column = pool[spec["name"]]
        missing = column.isna()
        if spec.get("kind") == "categorical":
            bad = ~column.isin(spec.get("categories") or [])
        else:
            values = pd.to_numeric(column, errors="coerce").astype(float)
            bad = ~np.isfinite(values)
            if spec.get("min") is not None:
                bad |= values < float(spec["min"])
            if spec.get("max") is not None:
                bad |= values > float(spec["max"])
        bad = bad & ~(missing & bool(spec.get("nullable", False)))
        if bad.any():
            example = column[bad].iloc[0]
            categorical = spec.get("kind") == "categorical"
            refused[spec["name"]] = {
                "rows": int(bad.sum()),
                "allowed": (
                    {"categories": list(spec.get("categories") or [])}
                    if categorical
                    else {"min": spec.get("min"), "max": spec.get("max")}
                ),
                "example": None
                if pd.isna(example)
                else (str(example) if categorical else float(example)),
            }
            keep &= ~bad
    return pool[keep].reset_index(drop=True), refused


def _golden_pool(
    champion_release: dict[str, Any],
    test_split: pd.DataFrame,
    test_predictions: pd.DataFrame,
    keys: list[str],
    names: list[str],
    version: str,
) -> tuple[pd.DataFrame, str, list[str]]:
    """The rows to draw from, where they come from, and the key columns they carry.

    The golden sample the evaluation stored with the version (``"model_version"``); for a
    version registered before evaluations stored one, the local evaluation outputs.
    """
    registered = champion_release.get("golden_sample")
    if registered is None:
        pool = _from_evaluation_outputs(test_split, test_predictions, keys, names)
        return pool, "evaluation_outputs", keys
    _require(registered, [*names, EXPECTED_COLUMN], f"golden_sample.parquet of {version}")
    pool = registered.reset_index(drop=True)
    return pool, "model_version", [k for k in keys if k in pool.columns]


def _drop_outside_schema(
    pool: pd.DataFrame, features: list[dict[str, Any]], *, outside_schema: str, version: str
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Leave out (with a warning) or fail on the rows the served app would refuse."""
    kept, refused = _within_schema(pool, features)
    if not refused:
        return kept, refused
    detail = "; ".join(
        f"{name}: {r['rows']} rows outside {r['allowed']}, e.g. {r['example']!r}"
        for name, r in refused.items()
    )
    if outside_schema == "fail":
        raise GoldenSampleError(
            f"test rows of {version} break the feature schema of its model_metadata.json,"
            f" so the served app would refuse them (422): {detail}"
        )
    logger.warning(
        "%s: %d test rows break the feature schema of model_metadata.json and are left out"
        " of the golden sample; the served app refuses such rows (422): %s",
        version,
        len(pool) - len(kept),
        detail,
    )
    return kept, refused


def _reproduction_gaps(
    model: Any,
    sample: pd.DataFrame,
    *,
    keys: list[str],
    names: list[str],
    tolerance: float,
    source: str,
    version: str,
) -> np.ndarray:
    """Absolute gaps between the model's and the sample's expected probabilities.

    Raises:
        GoldenSampleError: a gap exceeds ``tolerance`` (naming the worst row and the count).
    """
    expected = sample[EXPECTED_COLUMN].to_numpy(dtype=float)
    reproduced = model.predict_proba(sample[names])[:, 1]
    gaps = np.abs(reproduced - expected)
    worst = int(np.argmax(gaps))
    if not float(gaps[worst]) <= tolerance:
        where = ", ".join(f"{k}={sample.loc[worst, k]}" for k in keys) or f"row {worst}"
        raise GoldenSampleError(
            f"the golden sample ({source}) does not hold the scores of {version}: the"
            f" registered model differs by up to {gaps[worst]:.3g} (tolerance"
            f" {tolerance:g}) on {int(np.sum(gaps > tolerance))} of {len(gaps)} rows,"
            f" worst at {where}. {_REPRODUCTION_HINTS[source]}"
        )
    return gaps


#: What a golden sample the champion does not reproduce means, by where it came from.
_REPRODUCTION_HINTS = {
    "evaluation_outputs": "This version stores no golden sample (it was registered before"
    " the evaluation stored one), and the local evaluation outputs belong to another model"
    " (the last evaluation ran a challenger the gate refused?): re-run"
    " `kedro run --pipelines training,evaluation` for the champion's data, or register and"
    " export a new version",
    "model_version": "The registered model no longer scores the rows of its own"
    " golden_sample.parquet like its evaluation did: this environment's packages differ"
    " from the training run's (`kedro models rebuild` names them)",
}


def select_golden_sample(
    champion_release: dict[str, Any],
    test_split: pd.DataFrame,
    test_predictions: pd.DataFrame,
    training_params: dict[str, Any],
    export_params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Test-split rows with the probabilities the evaluation pipeline gave the champion.

    The rows come from the golden sample stored with the model version when the registry has
    one; otherwise from the evaluation pipeline's outputs (``test_split`` joined with
    ``test_predictions`` on the key columns). Either way the champion as loaded from the
    registry must reproduce every probability within the tolerance: this proves the scores
    are the evaluation's scores *of this version* (and not of a later, refused challenger
    whose run overwrote the local files).

    Rows the served app's request validation would refuse (a value outside the metadata's
    ``min``/``max`` or categories) cannot be compared; ``golden_sample.outside_schema`` says
    whether they are left out with a warning (and counted in the summary) or fail the export.

    Returns:
        The sample (keys, features in metadata order, ``expected_probability``; a seeded
        draw, in test-split order) and a summary for the manifest.

    Raises:
        GoldenSampleError: columns are missing, the tables do not join, or the champion does
            not reproduce the expected probabilities (the message names the rows and gap).
    """
    cfg = parse_export_params(export_params).golden_sample
    training = parse_training_params(training_params)
    names = _feature_names(champion_release)
    version = f"{champion_release['model_name']} v{champion_release['version']}"
    pool, source, keys = _golden_pool(
        champion_release,
        test_split,
        test_predictions,
        [*training.id_columns, training.time_column],
        names,
        version,
    )
    pool, refused = _drop_outside_schema(
        pool,
        champion_release["model_metadata"]["features"],
        outside_schema=cfg.outside_schema,
        version=version,
    )
    if pool.empty:
        raise GoldenSampleError(f"the golden sample pool of {version} ({source}) is empty")

    rng = np.random.default_rng(cfg.seed)
    picked = np.sort(rng.choice(len(pool), size=min(cfg.rows, len(pool)), replace=False))
    sample = pool.iloc[picked][[*keys, *names, EXPECTED_COLUMN]].reset_index(drop=True)
    gaps = _reproduction_gaps(
        champion_release["model"],
        sample,
        keys=keys,
        names=names,
        tolerance=cfg.tolerance,
        source=source,
        version=version,
    )
    summary = {
        "rows": len(sample),
        "source": source,
        "outside_schema": refused,
        "seed": cfg.seed,
        "tolerance": cfg.tolerance,
        "registry_model_max_abs_diff": float(gaps.max()),
    }
    logger.info(
        "Golden sample of %s: %d rows from %s; the registered model reproduces them within %.2g",
        version,
        len(sample),
        source,
        float(gaps.max()),
    )
    return sample, summary


def _check_metadata(champion: dict[str, Any]) -> None:
    meta = champion["model_metadata"]
    expected = {
        "model_name": champion["model_name"],
        "model_version": str(champion["version"]),
        "run_id": champion["run_id"],
    }
    wrong = {k: meta.get(k) for k, v in expected.items() if str(meta.get(k)) != str(v)}
    if wrong:
        raise BundleContractError(
            f"model_metadata.json of {champion['model_name']} v{champion['version']} says"
            f" {wrong}; expected {expected}"
        )
    threshold = meta.get("threshold")
    if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise BundleContractError(
            f"model_metadata.json of {champion['model_name']} v{champion['version']} has"
            f" threshold {threshold!r}; expected a number in [0, 1]"
        )


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def assemble_serving_bundle(
    champion_release: dict[str, Any],
    golden_sample: pd.DataFrame,
    golden_sample_summary: dict[str, Any],
    export_params: dict[str, Any],
) -> dict[str, Any]:
    """Describe the bundle of the champion: files, model, golden sample, pins and lineage.

    Returns:
        The payload ``ServingBundleDataset`` writes (see its docstring): the target folder
        ``<output_dir>/<bundle_name>``, the model, the texts of ``model_metadata.json``,
        ``reference_profile.json``, ``model_card.md`` and ``build-args.txt`` (the build
        arguments of the static serving Dockerfile the bundle build copies), the golden sample,
        the requirement roots, the image reference for ``k8s/`` and the manifest's lineage.

    Raises:
        BundleContractError: the metadata does not name this version and run, or its
            threshold is not a probability.
    """
    cfg = parse_export_params(export_params)
    _check_metadata(champion_release)
    names = _feature_names(champion_release)
    model_name, version = champion_release["model_name"], str(champion_release["version"])
    bundle = cfg.bundle_name.format(model_name=model_name, model_version=version)
    image = f"{cfg.container.image_repository}:{bundle}"
    tags = champion_release.get("tags", {})
    container = cfg.container
    build_args = serving_build_args(
        container,
        model_name=model_name,
        model_version=version,
        run_id=str(champion_release["run_id"]),
        revision=str(tags.get("git_commit", "unknown")),
    )
    manifest = _bundle_manifest(champion_release, bundle, golden_sample_summary, cfg)
    return {
        "bundle_dir": f"{cfg.output_dir.rstrip('/')}/{bundle}",
        "model": champion_release["model"],
        "model_version": version,
        "texts": {
            METADATA_FILE: _json_text(champion_release["model_metadata"]),
            REFERENCE_PROFILE_FILE: _json_text(champion_release["reference_profile"]),
            MODEL_CARD_FILE: champion_release["model_card"],
            BUILD_ARGS_FILE: render_build_args(build_args),
        },
        "golden_sample": golden_sample,
        "feature_names": names,
        "parity_tolerance": cfg.golden_sample.tolerance,
        "requirements": _requirement_roots(
            cfg, by_customer_id=manifest["feature_store"] is not None
        ),
        "python_version": container.python_version,
        "image": image,
        "manifest": manifest,
    }


def _requirement_roots(cfg: ExportParams, *, by_customer_id: bool) -> dict[str, Any]:
    """``export.requirements``, plus ``export.feature_store.distributions`` (Feast) when the
    model is served by customer id."""
    roots = cfg.requirements.model_dump()
    if by_customer_id:
        roots["distributions"] = [*roots["distributions"], *cfg.feature_store.distributions]
    return roots


def _bundle_manifest(
    champion_release: dict[str, Any],
    bundle: str,
    golden_sample_summary: dict[str, Any],
    cfg: ExportParams,
) -> dict[str, Any]:
    """The lineage part of ``manifest.json`` (the writer adds the file checksums)."""
    tags = champion_release.get("tags", {})
    container = cfg.container
    metadata = champion_release["model_metadata"]
    return {
        "bundle": bundle,
        "model": {
            "registry_name": champion_release["model_name"],
            "version": str(champion_release["version"]),
            "aliases": champion_release.get("aliases", []),
            "run_id": champion_release["run_id"],
            "model_uri": champion_release["model_uri"],
            "registered_at": _iso_time(champion_release.get("registered_at")),
            "threshold": metadata["threshold"],
            "metrics": metadata.get("metrics", {}),
            "features": _feature_names(champion_release),
        },
        "feature_store": _feature_store_needs(metadata, cfg.feature_store.online_store),
        "lineage": {
            "data_fingerprint": tags.get("data_fingerprint"),
            "training_git_commit": tags.get("git_commit"),
            "train_months": tags.get("train_months"),
            "test_months": tags.get("test_months"),
            "estimator": tags.get("estimator"),
        },
        "golden_sample": golden_sample_summary,
        "image": {
            "base_image_default": container.base_image,
            "python_version": container.python_version,
            "uid": container.uid,
            "port": container.port,
            "model_dir": container.model_dir,
        },
    }


def _feature_store_needs(metadata: dict[str, Any], online_store: str) -> dict[str, Any] | None:
    """The model's feature service and views (its metadata) with the deployment's online
    store; ``None`` when the model records none (it cannot be served by customer id)."""
    recorded = metadata.get("feature_store")
    if recorded is None:
        return None
    try:
        requirement = FeatureStoreRequirement.model_validate(
            {**recorded, "online_store": online_store}
        )
    except ValidationError as exc:
        raise BundleContractError(
            f"model_metadata.json of {metadata.get('model_name')} v{metadata.get('model_version')}"
            f" has an invalid feature_store: {format_validation_error(exc, prefix='feature_store')}"
        ) from exc
    return requirement.model_dump(mode="json")


def _iso_time(value: Any) -> str | None:
    """The registration time as ISO text (seconds) for the manifest; text is passed through."""
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else value

"""Rebuild a registered model version from what it recorded, and check it is the same model.

``kedro models rebuild <version>`` (docs/experiment_tracking.md, "Rebuild a version"):

1. reads what the version's MLflow run recorded: the content fingerprint of every input table
   (dataset inputs, :class:`churn_mlops.hooks.LineageHooks`), the code commit, the installed
   packages and the ``training`` parameters;
2. compares them with the project as it is now; a different ``model_input_table`` stops the
   rebuild (training on other data cannot give the same model);
3. runs the ``training`` pipeline with the recorded ``training`` parameters;
4. scores the golden sample (stored with the version, else the test split) with the
   registered model and with the rebuilt one and requires the same probabilities, to the bit.

Any difference raises :class:`RebuildError` naming what differs: data, code, packages or
parameters.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The table training reads; the rebuild requires its recorded fingerprint.
TRAINING_INPUT = "model_input_table"
#: Parameters re-applied from the version's run (kedro-mlflow logs each ``params:`` input).
REPLAYED_PARAMETERS = ("training",)


class RebuildError(RuntimeError):
    """The version cannot be rebuilt, or the rebuilt model differs; the message says why."""


@dataclass
class Provenance:
    """What a model version was built from, or what the project holds now."""

    inputs: dict[str, str] = field(default_factory=dict)
    git_commit: str = "unknown"
    packages: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)


def recorded_provenance(client: Any, run_id: str) -> Provenance:
    """Read the lineage that the training run of a version logged (see ``LineageHooks``)."""
    from churn_mlops.fingerprint import FINGERPRINT_INPUT_TAG, PACKAGES_ARTIFACT

    run = client.get_run(run_id)
    inputs = {}
    for item in run.inputs.dataset_inputs if run.inputs else []:
        tags = {t.key: t.value for t in item.tags}
        inputs[item.dataset.name] = tags.get(FINGERPRINT_INPUT_TAG, item.dataset.digest)
    try:
        import mlflow

        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{PACKAGES_ARTIFACT}")
        packages = text.split()
    except Exception:  # noqa: BLE001 - a version trained before lineage was recorded
        packages = []
    parameters = {}
    for name in REPLAYED_PARAMETERS:
        raw = run.data.params.get(name) or run.data.tags.get(name)
        if raw is not None:
            parameters[name] = ast.literal_eval(raw)
    return Provenance(
        inputs=inputs,
        git_commit=run.data.tags.get("git_commit", "unknown"),
        packages=packages,
        parameters=parameters,
    )


def differences(recorded: Provenance, current: Provenance) -> dict[str, str]:
    """What differs between the recorded and the current provenance, by kind (data, code...)."""
    found: dict[str, str] = {}
    data = [
        f"{name} (recorded {recorded.inputs[name][:16]}, now {current.inputs[name][:16]})"
        for name in sorted(set(recorded.inputs) & set(current.inputs))
        if recorded.inputs[name] != current.inputs[name]
    ]
    if data:
        found["data"] = "; ".join(data)
    if recorded.git_commit != current.git_commit or "+dirty" in recorded.git_commit:
        found["code"] = f"commit recorded {recorded.git_commit}, now {current.git_commit}"
    if recorded.packages and recorded.packages != current.packages:
        before, now = set(recorded.packages), set(current.packages)
        changed = sorted(before - now)[:10]
        added = sorted(now - before)[:10]
        found["packages"] = f"recorded but not installed now: {changed}; new now: {added}"
    elif not recorded.packages:
        found["packages"] = "the version did not record its packages"
    return found


def rebuild_version(
    project_path: Path | str,
    registry: Any,
    version: str,
    *,
    env: str | None = None,
) -> dict[str, Any]:
    """Retrain ``version`` from its recorded inputs and check the predictions are identical.

    Args:
        project_path: The Kedro project root.
        registry: A :class:`churn_mlops.registry.ChampionRegistry` of the registered model.
        version: The registered version (``3`` or ``v3``).
        env: Kedro configuration environment.

    Returns:
        ``{"version", "run_id", "rows", "differences"}``: the golden-sample size and the
        provenance differences that did not change the predictions (code or packages).

    Raises:
        RebuildError: The version lacks lineage, its training data is not what the project
            holds now, or the rebuilt model's predictions differ (naming what differs).
    """
    import mlflow.sklearn

    from churn_mlops.contracts.artifacts import GOLDEN_SAMPLE_FILE

    project_path = Path(project_path).resolve()
    version = version.removeprefix("v")
    registry.require_version(version)
    run_id = registry.client.get_model_version(registry.model_name, version).run_id
    label = f"{registry.model_name} v{version}"
    recorded = _recorded_with_lineage(registry.client, run_id, label)
    found = differences(recorded, _current_provenance(project_path, env))
    if "data" in found:
        raise RebuildError(
            f"cannot rebuild {label}: data differs: {found['data']}. "
            "Rebuild the recorded table first (raw data, then `kedro run --pipelines "
            "data_processing,feature_engineering`)"
        )
    logger.info(
        "Rebuilding %s v%s with the recorded parameters %s",
        registry.model_name,
        version,
        sorted(recorded.parameters),
    )
    rebuilt, golden = _retrain(project_path, env, recorded.parameters)
    uri = f"models:/{registry.model_name}/{version}"
    registered = mlflow.sklearn.load_model(uri)
    stored = _stored_golden_sample(uri, GOLDEN_SAMPLE_FILE)
    if stored is None:
        logger.info("v%s stores no golden sample; comparing on the test split", version)
    else:
        golden = stored
    _require_same_predictions(registered, rebuilt, golden, found=found, label=label)
    return {
        "version": version,
        "run_id": run_id,
        "rows": len(golden),
        "differences": found,
    }


def _recorded_with_lineage(client: Any, run_id: str, label: str) -> Provenance:
    """The provenance the version's run recorded; it must hold the training input's fingerprint."""
    recorded = recorded_provenance(client, run_id)
    if TRAINING_INPUT not in recorded.inputs:
        raise RebuildError(
            f"{label} (run {run_id}) recorded no fingerprint "
            f"of {TRAINING_INPUT!r}; it was trained before lineage was recorded and cannot be "
            "checked"
        )
    return recorded


def _current_provenance(project_path: Path, env: str | None) -> Provenance:
    """What the project holds now: the training input's fingerprint, the commit, the packages."""
    from kedro.framework.session import KedroSession

    from churn_mlops.fingerprint import fingerprint_table, installed_packages
    from churn_mlops.provenance import git_revision

    with KedroSession.create(project_path=project_path, env=env) as session:
        table = session.load_context().catalog.load(f"{TRAINING_INPUT}@pandas")
    return Provenance(
        inputs={TRAINING_INPUT: fingerprint_table(table)},
        git_commit=git_revision(project_path),
        packages=installed_packages(),
    )


def _retrain(project_path: Path, env: str | None, parameters: dict[str, Any]) -> tuple[Any, Any]:
    """Run the ``training`` pipeline with ``parameters``; return the model and the test split."""
    from kedro.framework.session import KedroSession

    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=parameters
    ) as session:
        session.run(pipeline_names=["training"])
    with KedroSession.create(project_path=project_path, env=env) as session:
        catalog = session.load_context().catalog
        return catalog.load("trained_model"), catalog.load("test_split")


def _require_same_predictions(
    registered: Any, rebuilt: Any, golden: Any, *, found: dict[str, str], label: str
) -> None:
    """Raise :class:`RebuildError` unless both models give bit-identical probabilities."""
    import numpy as np

    features = list(registered.feature_names_in_)
    expected = registered.predict_proba(golden[features])[:, 1]
    actual = rebuilt.predict_proba(golden[features])[:, 1]
    if not np.array_equal(expected, actual):
        worst = float(np.max(np.abs(expected - actual)))
        causes = "; ".join(f"{kind} differs: {text}" for kind, text in found.items())
        raise RebuildError(
            f"the rebuilt model's predictions differ from {label} on "
            f"{int((expected != actual).sum())} of {len(golden)} golden rows (largest "
            f"difference {worst:.3g}). "
            + (causes or "Data, code and packages match: training is not deterministic here")
        )


def _stored_golden_sample(model_uri: str, name: str) -> Any:
    """The golden sample stored with the version, or ``None`` when it has none."""
    import tempfile

    import mlflow
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="churn-rebuild-") as folder:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{model_uri}/{name}", dst_path=folder
            )
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing file
            return None
        return pd.read_parquet(path)

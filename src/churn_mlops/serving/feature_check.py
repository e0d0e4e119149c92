"""Start-up check: the feature repository of ``CHURN_FEATURE_REPO`` serves what the model needs.

The bundle names the Feast feature service and views its model reads (``manifest.json`` and
``model_metadata.json``, :class:`~churn_mlops.contracts.feature_store.FeatureStoreRequirement`).
Before the app serves, :func:`check_feature_repository` reads the repository's registry (not
the online store) and refuses to start when a view, a feature or the service is missing, with a
message naming each; a different online store type than the bundle declares is only logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from churn_mlops.contracts.artifacts import BUNDLE_MANIFEST_FILE
from churn_mlops.contracts.errors import format_validation_error
from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.serving.errors import BundleError, FeatureRepositoryError

if TYPE_CHECKING:  # Feast is imported only when a repository is configured
    from churn_mlops.feature_store.repository import FeatureRepository
    from churn_mlops.serving.model_store import LoadedModel

logger = logging.getLogger(__name__)


def bundle_feature_store(model: LoadedModel) -> FeatureStoreRequirement | None:
    """What the bundle needs: ``manifest.json``'s ``feature_store`` (with the online store the
    deployment reads), else ``model_metadata.json``'s; ``None`` when neither records one.

    Raises:
        BundleError: the manifest's ``feature_store`` breaks the contract.
    """
    path = model.bundle_dir / BUNDLE_MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # the model loaded, so the manifest was read; demo bundles
        manifest = {}
    recorded = manifest.get("feature_store") if isinstance(manifest, dict) else None
    if recorded is None:
        return model.metadata.feature_store
    try:
        return FeatureStoreRequirement.model_validate(recorded)
    except ValidationError as exc:
        problems = format_validation_error(exc, prefix="feature_store")
        raise BundleError(f"{path} breaks the feature-store contract: {problems}") from exc


def feature_store_gaps(
    needed: FeatureStoreRequirement | None,
    model_features: Sequence[str],
    service: str,
    served: dict[str, list[str]],
) -> list[str]:
    """What the repository's feature service (``served``: view -> features) lacks.

    Without a recorded requirement (a bundle exported before feature stores), every model
    feature must still be served by some view.
    """
    if needed is None:
        everything = {name for names in served.values() for name in names}
        missing = [name for name in model_features if name not in everything]
        return (
            [f"features {missing} are in no view of feature service {service!r}"] if missing else []
        )
    problems = []
    if service != needed.feature_service:
        problems.append(
            f"its feature service is {service!r}, the model reads {needed.feature_service!r}"
        )
    absent = [view.name for view in needed.feature_views if view.name not in served]
    if absent:
        problems.append(f"feature view(s) {absent} are missing (it serves {sorted(served)})")
    for view in needed.feature_views:
        lacking = [
            name for name in view.features if name not in served.get(view.name, view.features)
        ]
        if lacking:
            problems.append(f"feature view {view.name!r} lacks features {lacking}")
    return problems


def check_feature_repository(
    repository: FeatureRepository | None, model: LoadedModel | None
) -> None:
    """Refuse to start when ``CHURN_FEATURE_REPO`` cannot serve the model by customer id.

    Does nothing without a configured repository or a loaded model.

    Raises:
        FeatureRepositoryError: the registry cannot be read (Feast missing, not registered,
            bad configuration), or it lacks the service, a view or a feature the model needs.
        BundleError: the bundle's own record is malformed.
    """
    if repository is None or model is None:
        return
    needed = bundle_feature_store(model)
    where = f"feature repository {repository.repo_path} ({repository.fs_yaml_file})"
    try:
        service, served = repository.feature_service, repository.service_views()
        online_store = repository.online_store_type
    except Exception as exc:  # Feast raises many types; all mean "unreadable" here
        raise FeatureRepositoryError(
            f"CHURN_FEATURE_REPO: the {where} cannot be read: {type(exc).__name__}: {exc}"
        ) from exc
    version = f"{model.metadata.model_name} v{model.version}"
    problems = feature_store_gaps(needed, model.feature_names, service, served)
    if problems:
        raise FeatureRepositoryError(
            f"CHURN_FEATURE_REPO: the {where} does not serve what {version} needs: "
            + "; ".join(problems)
            + ". Run `kedro run --pipeline feature_store` for this repository, or point"
            " CHURN_FEATURE_REPO at the one the model's features are registered in"
        )
    if needed is not None and needed.online_store not in (None, online_store):
        logger.warning(
            "the bundle of %s expects a %s online store; the %s reads %s",
            version,
            needed.online_store,
            where,
            online_store,
        )
    logger.info("the %s serves every feature view %s needs", where, version)

"""Reading a serving bundle folder: the model file, its metadata and its reference profile.

The layout is the contract of ``docs/architecture.md``; both JSON schemas are defined once in
:mod:`churn_mlops.contracts`::

    <bundle>/model/model.joblib      the fitted sklearn Pipeline (steps ``preprocess``, ``model``)
    <bundle>/model_metadata.json     name, version, threshold, metrics, feature schema
    <bundle>/reference_profile.json  training-data distribution of every feature and the score

Unknown top-level keys of the metadata are ignored rather than refused (a newer exporter may
add fields); the feature entries and the profile follow their contracts strictly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from churn_mlops.contracts.artifacts import BUNDLE_MODEL_FILE, REFERENCE_PROFILE_FILE
from churn_mlops.contracts.artifacts import METADATA_FILE as _METADATA_NAME
from churn_mlops.contracts.errors import ProfileContractError, format_validation_error
from churn_mlops.contracts.metadata import ModelMetadata
from churn_mlops.contracts.profile import ReferenceProfile, parse_reference_profile
from churn_mlops.serving.errors import BundleError

MODEL_FILE = Path(BUNDLE_MODEL_FILE)
METADATA_FILE = Path(_METADATA_NAME)
PROFILE_FILE = Path(REFERENCE_PROFILE_FILE)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise BundleError(f"bundle file {path} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"bundle file {path} is not readable JSON: {exc}") from exc


def read_metadata(bundle_dir: Path) -> ModelMetadata:
    """Read and validate ``model_metadata.json`` of a bundle.

    Raises:
        BundleError: the file is missing, not JSON, or breaks the metadata schema (the message
            lists each bad key).
    """
    path = bundle_dir / METADATA_FILE
    raw = _read_json(path)
    try:
        return ModelMetadata.model_validate(raw)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise BundleError(f"{path} breaks the metadata contract: {problems}") from exc


def read_reference_profile(bundle_dir: Path) -> ReferenceProfile:
    """Read ``reference_profile.json`` of a bundle.

    Raises:
        BundleError: the file is missing, not JSON or malformed.
    """
    path = bundle_dir / PROFILE_FILE
    try:
        return parse_reference_profile(_read_json(path))
    except ProfileContractError as exc:
        raise BundleError(f"{path}: {exc}") from exc


def load_pipeline(bundle_dir: Path) -> Any:
    """Unpickle the fitted Pipeline of a bundle with joblib.

    Only load bundles you trust: unpickling runs code from the file.

    Raises:
        BundleError: the file is missing or cannot be unpickled.
    """
    import joblib  # deferred: only loading needs it

    path = bundle_dir / MODEL_FILE
    if not path.is_file():
        raise BundleError(f"bundle file {path} is missing")
    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad bundle
        raise BundleError(f"bundle file {path} could not be loaded: {type(exc).__name__}") from exc

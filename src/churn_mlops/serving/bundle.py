"""Reading a serving bundle folder: the model file, its metadata and its reference profile.

The layout and both JSON schemas are the contract of ``docs/architecture.md``::

    <bundle>/model/model.onnx        the registered Pipeline (preprocess + model) as ONNX
    <bundle>/model/explainer.json    how to explain (TreeSHAP booster file or linear coefficients)
    <bundle>/model/booster.ubj       XGBoost models only: the booster, XGBoost's saved format
    <bundle>/model_metadata.json     name, version, threshold, metrics, feature schema
    <bundle>/reference_profile.json  training-data distribution of every feature and the score
    <bundle>/manifest.json           lineage and the sha256 of every file

Every file the app reads is checked against ``manifest.json`` before it is read
(:func:`verify_manifest`); none of them runs code when it is loaded.

Unknown keys in the JSON files are ignored rather than refused: a newer exporter may add
fields, and an older serving image must still load its bundle.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from churn_mlops.contracts.artifacts import BUNDLE_MANIFEST_FILE, REFERENCE_PROFILE_FILE
from churn_mlops.contracts.artifacts import METADATA_FILE as _METADATA_NAME
from churn_mlops.contracts.errors import ProfileContractError, format_validation_error
from churn_mlops.contracts.metadata import ModelMetadata
from churn_mlops.contracts.profile import ReferenceProfile, parse_reference_profile
from churn_mlops.serving.errors import BundleError
from churn_mlops.serving.runtime import BOOSTER_FILE, EXPLAINER_FILE, ONNX_MODEL_FILE

MODEL_FILE = ONNX_MODEL_FILE
METADATA_FILE = Path(_METADATA_NAME)
PROFILE_FILE = Path(REFERENCE_PROFILE_FILE)
MANIFEST_FILE = Path(BUNDLE_MANIFEST_FILE)
SERVED_FILES = (ONNX_MODEL_FILE, EXPLAINER_FILE, METADATA_FILE, PROFILE_FILE)
"""Files the app reads from every bundle (plus :data:`BOOSTER_FILE` when the bundle has one)."""


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


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_manifest(bundle_dir: Path) -> dict[str, Any]:
    """Check every file the app will read against the sha256 in ``manifest.json``.

    Returns:
        The parsed manifest.

    Raises:
        BundleError: the manifest is missing or malformed, a served file is not listed in it,
            or a file's sha256 differs (the message names the file).
    """
    path = bundle_dir / MANIFEST_FILE
    manifest = _read_json(path)
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise BundleError(f"{path} has no 'files' object of checksums")
    wanted = list(SERVED_FILES)
    if (bundle_dir / BOOSTER_FILE).exists() or BOOSTER_FILE.as_posix() in files:
        wanted.append(BOOSTER_FILE)
    for relative in wanted:
        key = relative.as_posix()
        entry = files.get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise BundleError(f"{path} lists no sha256 for {key}; refusing to load it")
        file = bundle_dir / relative
        if not file.is_file():
            raise BundleError(f"bundle file {file} is missing")
        actual = sha256_file(file)
        if actual != entry["sha256"]:
            raise BundleError(
                f"bundle file {key} fails its checksum: manifest.json says"
                f" {entry['sha256'][:12]}…, the file has {actual[:12]}…; refusing to load it"
            )
    return dict(manifest)


def checksums(bundle_dir: Path, relative_paths: list[Path]) -> dict[str, dict[str, Any]]:
    """``{posix path: {"sha256", "bytes"}}`` of the given bundle files (the manifest's form)."""
    return {
        p.as_posix(): {
            "sha256": sha256_file(bundle_dir / p),
            "bytes": (bundle_dir / p).stat().st_size,
        }
        for p in relative_paths
    }

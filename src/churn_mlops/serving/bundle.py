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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from churn_mlops.serving.errors import BundleError
from churn_mlops.serving.runtime import BOOSTER_FILE, EXPLAINER_FILE, ONNX_MODEL_FILE

MODEL_FILE = ONNX_MODEL_FILE
METADATA_FILE = Path("model_metadata.json")
PROFILE_FILE = Path("reference_profile.json")
MANIFEST_FILE = Path("manifest.json")
SERVED_FILES = (ONNX_MODEL_FILE, EXPLAINER_FILE, METADATA_FILE, PROFILE_FILE)
"""Files the app reads from every bundle (plus :data:`BOOSTER_FILE` when the bundle has one)."""


class FeatureSpec(BaseModel):
    """One model input as the metadata describes it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical"]
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""
    nullable: bool = False

    @model_validator(mode="after")
    def _check_kind_fields(self) -> FeatureSpec:
        if self.kind == "categorical" and not self.categories:
            raise ValueError(f"categorical feature {self.name!r} needs a non-empty 'categories'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r} has min {self.min} > max {self.max}")
        return self


class ModelMetadata(BaseModel):
    """``model_metadata.json``: identity, decision threshold, metrics and feature schema."""

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    run_id: str | None = None
    threshold: float = Field(ge=0.0, le=1.0)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    features: tuple[FeatureSpec, ...] = Field(min_length=1)

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # The registry hands out integers; the contract writes them as strings.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _unique_names(self) -> ModelMetadata:
        names = [f.name for f in self.features]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"feature names must be unique, repeated: {duplicated}")
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in metadata order."""
        return tuple(f.name for f in self.features)


@dataclass(frozen=True)
class NumericProfile:
    """Reference distribution of a numeric feature (bins with open-ended first and last bin)."""

    bin_edges: tuple[float, ...]
    frequencies: tuple[float, ...]
    null_share: float = 0.0


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference share of every category of a categorical feature."""

    frequencies: dict[str, float]


@dataclass(frozen=True)
class ReferenceProfile:
    """``reference_profile.json`` reduced to what live drift needs."""

    features: dict[str, NumericProfile | CategoricalProfile]
    score: NumericProfile | None
    raw: dict[str, Any]
    entries: dict[str, Any]  # the raw per-feature objects (mean, std, min, max, ...)


def _parse_feature_profile(
    name: str, entry: Any, path: Path
) -> NumericProfile | CategoricalProfile:
    if not isinstance(entry, dict):
        raise BundleError(f"{path}: entry {name!r} must be an object, got {type(entry).__name__}")
    frequencies = entry.get("frequencies")
    kind = entry.get("kind") or ("categorical" if isinstance(frequencies, dict) else "numeric")
    if kind == "numeric":
        edges = entry.get("bin_edges")
        if not isinstance(edges, list) or not isinstance(frequencies, list) or not frequencies:
            raise BundleError(f"{path}: {name!r} needs lists 'bin_edges' and 'frequencies'")
        # Edges come as k+1 boundaries (first/last open-ended, may be null) or k-1 cut points.
        if len(frequencies) == len(edges) - 1:
            cut_points = edges[1:-1]
        elif len(frequencies) == len(edges) + 1:
            cut_points = edges
        else:
            raise BundleError(
                f"{path}: {name!r} has {len(edges)} bin_edges and {len(frequencies)} frequencies;"
                " expected len(frequencies) == len(bin_edges) - 1"
            )
        try:
            cuts = tuple(float(e) for e in cut_points)
            freqs = tuple(float(f) for f in frequencies)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{path}: {name!r} bin_edges/frequencies must be numbers") from exc
        if any(not math.isfinite(c) for c in cuts) or list(cuts) != sorted(cuts):
            raise BundleError(f"{path}: {name!r} inner bin_edges must be finite and increasing")
        null_share = float(entry.get("null_share") or 0.0)
        return NumericProfile(bin_edges=cuts, frequencies=freqs, null_share=null_share)
    if kind == "categorical" and isinstance(frequencies, dict):
        try:
            shares = {str(k): float(v) for k, v in frequencies.items()}
            return CategoricalProfile(frequencies=shares)
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{path}: {name!r} category frequencies must be numbers") from exc
    raise BundleError(
        f"{path}: {name!r} is neither numeric ('bin_edges' and a 'frequencies' list) nor"
        " categorical (a 'frequencies' object)"
    )


def parse_reference_profile(raw: dict[str, Any], path: Path) -> ReferenceProfile:
    """Turn the JSON of a reference profile into :class:`ReferenceProfile`.

    Accepts the layouts the monitoring pipeline reads too: per-feature entries under a
    ``"features"`` object, as a ``"features"`` list of ``{"name": ...}`` objects, or at the top
    level next to ``"score"``; numeric entries carry ``bin_edges`` and a ``frequencies`` list,
    categorical ones a ``frequencies`` object (``kind`` may say which).

    Raises:
        BundleError: an entry is malformed; the message names the file and the feature.
    """
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    body = raw.get("features")
    if isinstance(body, list):
        entries: dict[str, Any] = {}
        for i, item in enumerate(body):
            if not isinstance(item, dict) or "name" not in item:
                raise BundleError(f"{path}: features[{i}] must be an object with a 'name'")
            entries[str(item["name"])] = item
    elif isinstance(body, dict):
        entries = body
    else:
        entries = {k: v for k, v in raw.items() if k != "score" and isinstance(v, dict)}
    features = {
        str(name): _parse_feature_profile(str(name), entry, path) for name, entry in entries.items()
    }
    score_entry = raw.get("score")
    score = None
    if isinstance(score_entry, dict) and "bin_edges" in score_entry:
        parsed = _parse_feature_profile("score", score_entry, path)
        score = parsed if isinstance(parsed, NumericProfile) else None
    return ReferenceProfile(features=features, score=score, raw=raw, entries=entries)


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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise BundleError(f"{path} breaks the metadata contract: {problems}") from exc


def read_reference_profile(bundle_dir: Path) -> ReferenceProfile:
    """Read ``reference_profile.json`` of a bundle.

    Raises:
        BundleError: the file is missing, not JSON or malformed.
    """
    path = bundle_dir / PROFILE_FILE
    return parse_reference_profile(_read_json(path), path)


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

"""Loading a bundle into a ready-to-serve model, and hot reload with an atomic swap.

:func:`load_model` checks the bundle's files against ``manifest.json``, opens the ONNX graph
with onnxruntime (:mod:`churn_mlops.serving.runtime`), generates the request models and warms
every code path once. :class:`ModelStore` holds the model being served; a reload builds the
new one on a background thread and then replaces a single reference, so a request sees either
the old model or the new one, never a mix, and a failed load leaves the old one serving.

The ONNX graph was checked against the registered Pipeline by the export's parity gate
(``docs/export.md``); serving does not load the Pipeline (unpickling would run code).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from churn_mlops.contracts.metadata import ModelMetadata
from churn_mlops.contracts.profile import CategoricalReference, NumericReference, ReferenceProfile
from churn_mlops.serving.bundle import read_metadata, read_reference_profile, verify_manifest
from churn_mlops.serving.drift import SlidingWindowDrift
from churn_mlops.serving.errors import BundleError, ReloadInProgressError, ReloadRootError
from churn_mlops.serving.runtime import OnnxPredictor
from churn_mlops.serving.schemas import ReloadStatus, RequestSchemas, build_request_schemas
from churn_mlops.serving.settings import ServingSettings

logger = logging.getLogger(__name__)

WARMUP_RANDOM_ROWS = 64
"""Random rows (besides edge rows) in the load-time parity check."""


@dataclass(frozen=True)
class LoadedModel:
    """Everything the request path needs about one bundle, built once and never mutated."""

    bundle_dir: Path
    metadata: ModelMetadata
    profile: ReferenceProfile
    predictor: OnnxPredictor
    schemas: RequestSchemas
    drift: SlidingWindowDrift
    unknown_category: str
    loaded_at: str

    @property
    def version(self) -> str:
        """Registry version of the model."""
        return self.metadata.model_version

    @property
    def threshold(self) -> float:
        """Business decision threshold: label 1 when the probability reaches it."""
        return self.metadata.threshold

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in metadata order."""
        return self.metadata.feature_names

    def score(self, rows: Any) -> npt.NDArray[np.float64]:
        """Churn probabilities of feature rows: THE scoring entry point of the app.

        Args:
            rows: A pandas DataFrame with the feature columns, or a sequence of row
                dictionaries (feature name → value; ``None`` for a missing nullable value).
                Rows are not validated here: routes validate them with ``schemas``.

        Returns:
            float64 probabilities, one per row, in order.
        """
        if isinstance(rows, Sequence) and (not rows or isinstance(rows[0], Mapping)):
            return self.predictor.predict_proba(rows) if rows else np.zeros(0)
        return self.predictor.predict_frame(rows)


def _numeric_range(name: str, spec: Any, profile: ReferenceProfile) -> tuple[float, float]:
    ref = profile.features.get(name)
    numeric = ref if isinstance(ref, NumericReference) else None
    low = spec.min if spec.min is not None else (numeric.min if numeric else None)
    high = spec.max if spec.max is not None else (numeric.max if numeric else None)
    low = float(low) if low is not None else 0.0
    high = float(high) if high is not None else max(low, 0.0) + 1000.0
    return low, max(low, high)


def warmup_rows(
    metadata: ModelMetadata,
    profile: ReferenceProfile,
    *,
    n_random: int = WARMUP_RANDOM_ROWS,
    include_unknown: bool = True,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows that exercise every category, both ends of every range and random mixes."""
    rng = np.random.default_rng(seed)
    ranges = {
        s.name: _numeric_range(s.name, s, profile) for s in metadata.features if s.kind == "numeric"
    }
    categories = {s.name: list(s.categories or ()) for s in metadata.features if s.categories}
    rows: list[dict[str, Any]] = []
    for i in range(n_random):
        row: dict[str, Any] = {}
        for spec in metadata.features:
            if spec.kind == "numeric":
                low, high = ranges[spec.name]
                row[spec.name] = (
                    float(rng.uniform(low, high))
                    if i % 2
                    else float(rng.integers(int(low), int(high) + 1))
                )
            else:
                row[spec.name] = categories[spec.name][i % len(categories[spec.name])]
        rows.append(row)
    for pick in (0, 1):  # all minimums, then all maximums
        rows.append(
            {
                s.name: ranges[s.name][pick] if s.kind == "numeric" else categories[s.name][-pick]
                for s in metadata.features
            }
        )
    if include_unknown:
        unknown = dict(rows[0])
        for name in categories:
            unknown[name] = "__unknown_category__"
        rows.append(unknown)
    for spec in metadata.features:
        if spec.nullable:
            with_null = dict(rows[1])
            with_null[spec.name] = None
            rows.append(with_null)
    return rows


def _profile_means(profile: ReferenceProfile) -> dict[str, float]:
    return {
        name: float(ref.mean)
        for name, ref in profile.features.items()
        if isinstance(ref, NumericReference) and np.isfinite(ref.mean)
    }


def _category_shares(profile: ReferenceProfile) -> dict[str, dict[str, float]]:
    return {
        name: dict(p.frequencies)
        for name, p in profile.features.items()
        if isinstance(p, CategoricalReference)
    }


def load_model(bundle_dir: Path, settings: ServingSettings) -> LoadedModel:
    """Verify, read and warm a bundle.

    Raises:
        BundleError: the manifest is missing or a file fails its checksum, a bundle file is
            missing or breaks the contract, or the graph's inputs are not the metadata features.
    """
    bundle_dir = Path(bundle_dir)
    verify_manifest(bundle_dir)
    metadata = read_metadata(bundle_dir)
    profile = read_reference_profile(bundle_dir)
    for name, entry in profile.features.items():
        kind = entry.kind
        spec = next((s for s in metadata.features if s.name == name), None)
        if spec is not None and spec.kind != kind:
            raise BundleError(
                f"{bundle_dir}: feature {name!r} is {spec.kind} in the metadata but {kind}"
                " in the reference profile"
            )
    predictor = OnnxPredictor(
        bundle_dir,
        threads=settings.onnx_intra_op_threads,
        inter_op_threads=settings.onnx_inter_op_threads,
    )
    undeclared = [c for c in predictor.input_columns if c not in metadata.feature_names]
    if undeclared:
        raise BundleError(
            f"{bundle_dir}: the model reads columns {undeclared} that model_metadata.json does"
            f" not declare; declared: {list(metadata.feature_names)}"
        )
    policy = settings.unknown_category
    if policy == "ignore" and not predictor.accepts_unknown_categories:
        logger.warning(
            "CHURN_UNKNOWN_CATEGORY=ignore but the model's encoder refuses unknown categories;"
            " rejecting them instead"
        )
        policy = "reject"
    schemas = build_request_schemas(
        metadata,
        unknown_category=policy,
        max_predict_rows=settings.max_predict_rows,
        max_explain_rows=settings.max_explain_rows,
        max_abs_value=settings.max_abs_feature_value,
    )
    # Warm every path once so the first real request pays no lazy initialisation.
    warm = warmup_rows(metadata, profile, n_random=2, include_unknown=False)
    for _ in range(3):
        predictor.predict_proba(warm[:1])
        predictor.predict_proba(warm)
    predictor.explain(warm[:1], top_k=1)
    drift = SlidingWindowDrift(
        profile,
        metadata.feature_names,
        window=settings.drift_window,
        min_samples=settings.drift_min_samples,
    )
    logger.info(
        "loaded %s v%s from %s (ONNX Runtime, %s explanations)",
        metadata.model_name,
        metadata.model_version,
        bundle_dir,
        predictor.kind,
    )
    return LoadedModel(
        bundle_dir=bundle_dir,
        metadata=metadata,
        profile=profile,
        predictor=predictor,
        schemas=schemas,
        drift=drift,
        unknown_category=policy,
        loaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


class ModelStore:
    """The model being served, swapped atomically by hot reloads.

    Args:
        settings: Serving settings (limits and policies baked into the request models).
        on_swap: Called with ``(old, new)`` right after a new model starts serving.
        admit: Called with a hot-reloaded model before it serves; raising refuses it and the
            current model keeps serving (the app checks the feature repository here).
    """

    def __init__(
        self,
        settings: ServingSettings,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
        admit: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_swap = on_swap
        self._admit = admit
        self._current: LoadedModel | None = None
        self._reload_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = ReloadStatus(state="idle")

    @property
    def current(self) -> LoadedModel | None:
        """The model serving now (None before the first load). Read it once per request."""
        return self._current

    @property
    def reload_status(self) -> ReloadStatus:
        """State of the last hot reload."""
        return self._status

    def load(self, bundle_dir: Path) -> LoadedModel:
        """Load ``bundle_dir`` synchronously and serve it.

        Raises:
            BundleError: the bundle cannot be loaded; the current model (if any) stays.
        """
        model = load_model(bundle_dir, self.settings)
        self._swap(model)
        return model

    def _swap(self, model: LoadedModel) -> None:
        old, self._current = self._current, model  # one reference assignment: atomic
        logger.info(
            "serving %s v%s from %s", model.metadata.model_name, model.version, model.bundle_dir
        )
        if self._on_swap is not None:
            self._on_swap(old, model)

    def resolve_reload_dir(self, requested: str | None) -> Path:
        """The bundle folder a reload should read (``CHURN_MODEL_DIR`` when none is given).

        Raises:
            BundleError: the folder is outside ``CHURN_RELOAD_ROOT`` or does not exist.
        """
        path = Path(requested) if requested else Path(self.settings.model_dir)
        root = self.settings.reload_root
        if root is not None:
            resolved, root_resolved = path.resolve(), Path(root).resolve()
            if resolved != root_resolved and root_resolved not in resolved.parents:
                raise ReloadRootError("the requested bundle folder is outside CHURN_RELOAD_ROOT")
        if not path.is_dir():
            raise BundleError("the requested bundle folder does not exist")
        return path

    def start_reload(self, bundle_dir: Path) -> ReloadStatus:
        """Load ``bundle_dir`` on a background thread and swap it in when it is ready.

        Raises:
            ReloadInProgressError: another reload has not finished yet.
        """
        if not self._reload_lock.acquire(blocking=False):
            raise ReloadInProgressError("a reload is already in progress")
        self._status = ReloadStatus(
            state="loading", requested_dir=str(bundle_dir), started_at=_now()
        )
        self._thread = threading.Thread(
            target=self._reload, args=(Path(bundle_dir),), name="churn-reload", daemon=True
        )
        self._thread.start()
        return self._status

    def wait_for_reload(self, timeout: float | None = None) -> ReloadStatus:
        """Block until the running reload (if any) finishes; for tests and shutdown."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._status

    def _reload(self, bundle_dir: Path) -> None:
        started = self._status.started_at
        try:
            model = load_model(bundle_dir, self.settings)
            if self._admit is not None:
                self._admit(model)
            self._swap(model)
            self._status = ReloadStatus(
                state="succeeded",
                model_version=model.version,
                requested_dir=str(bundle_dir),
                started_at=started,
                finished_at=_now(),
            )
        except Exception as exc:  # noqa: BLE001 - any failure must leave the old model serving
            logger.error(
                "reload of %s failed, the previous model keeps serving: %s", bundle_dir, exc
            )
            self._status = ReloadStatus(
                state="failed",
                requested_dir=str(bundle_dir),
                error=f"{type(exc).__name__}: {exc}",
                model_version=self._current.version if self._current else None,
                started_at=started,
                finished_at=_now(),
            )
        finally:
            self._reload_lock.release()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

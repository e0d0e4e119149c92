"""Reference profiles: build one from training data, read one back (docs/architecture.md).

A reference profile summarises the training distribution of every model feature and of the
training-set score, so that drift can be measured without shipping the training data:

* numeric: ``bin_edges`` (``[min, q_1, …, q_{k-1}, max]``: quantile cut points between the
  training minimum and maximum; the first and last bins are open-ended, so a value below the
  minimum counts in the first bin and one above the maximum in the last), ``frequencies`` (share
  of non-null rows per bin; bin ``i`` is ``[edge_i, edge_{i+1})``), ``mean``, ``std``, ``min``,
  ``max``, ``null_share`` and ``count``;
* categorical: ``frequencies`` ``{category: share}`` over non-null rows, ``null_share``, ``count``.

The reader accepts the profile as ``{"features": {name: {...}}, "score": {...}}``, with
``features`` as a list of ``{"name": ..., ...}`` entries, or flat (``{name: {...}, "score": ...}``),
and bin edges given either with the outer edges (``k + 1`` values for ``k`` bins) or as inner cut
points only (``k - 1`` values); outer edges that are ``null`` or infinite are read as open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.monitoring.errors import ReferenceProfileError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
SCORE_KEY = "score"


@dataclass(frozen=True)
class NumericReference:
    """Training distribution of one numeric column, binned on training quantiles."""

    name: str
    inner_edges: np.ndarray
    frequencies: np.ndarray
    mean: float
    std: float
    min: float
    max: float
    null_share: float = 0.0
    count: int | None = None
    kind: str = field(default=NUMERIC, init=False)


@dataclass(frozen=True)
class CategoricalReference:
    """Training distribution of one categorical column."""

    name: str
    frequencies: dict[str, float]
    null_share: float = 0.0
    count: int | None = None
    kind: str = field(default=CATEGORICAL, init=False)


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile:
    """Every feature's reference distribution plus the training-score distribution."""

    features: dict[str, ColumnReference]
    score: NumericReference | None = None

    def kinds(self) -> dict[str, str]:
        """Map each feature name to ``"numeric"`` or ``"categorical"``."""
        return {name: ref.kind for name, ref in self.features.items()}


def numeric_values(series: pd.Series | np.ndarray) -> np.ndarray:
    """Return a column as a float64 array with nulls (and booleans as 0/1) ready for statistics."""
    if isinstance(series, np.ndarray):
        return series.astype(np.float64, copy=False)
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def quantile_cut_points(sorted_values: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges at the reference quantiles ``i / n_bins`` (deduplicated, above the minimum).

    Args:
        sorted_values: finite reference values in ascending order (at least one).
        n_bins: the number of quantile bins wanted; ties (count features) give fewer.

    Returns:
        Strictly increasing cut points, each greater than the reference minimum, so that no bin
        is empty by construction.
    """
    n = sorted_values.size
    positions = (np.arange(1, n_bins, dtype=np.int64) * n) // n_bins
    cuts = np.unique(sorted_values[positions])
    return cuts[cuts > sorted_values[0]]


def _numeric_reference(name: str, values: np.ndarray, n_bins: int) -> NumericReference:
    null_share = float(np.mean(~np.isfinite(values))) if values.size else 0.0
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        raise ReferenceProfileError(
            f"Cannot profile numeric feature '{name}': it has no finite value in the "
            f"{values.size} reference rows; expected at least one."
        )
    cuts = quantile_cut_points(finite, n_bins)
    below = np.searchsorted(finite, cuts, side="left")
    counts = np.diff(np.concatenate([[0], below, [finite.size]]))
    return NumericReference(
        name=name,
        inner_edges=cuts.astype(np.float64),
        frequencies=counts / finite.size,
        mean=float(finite.mean()),
        std=float(finite.std()),
        min=float(finite[0]),
        max=float(finite[-1]),
        null_share=null_share,
        count=int(finite.size),
    )


def _categorical_reference(name: str, series: pd.Series) -> CategoricalReference:
    null_share = float(series.isna().mean()) if len(series) else 0.0
    counts = series.dropna().astype(str).value_counts()
    total = int(counts.sum())
    if total == 0:
        raise ReferenceProfileError(
            f"Cannot profile categorical feature '{name}': all {len(series)} reference rows are "
            "null; expected at least one category."
        )
    return CategoricalReference(
        name=name,
        frequencies={str(k): float(v) / total for k, v in counts.sort_index().items()},
        null_share=null_share,
        count=total,
    )


def build_reference_profile(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    *,
    n_bins: int,
    scores: np.ndarray | pd.Series | None = None,
) -> ReferenceProfile:
    """Profile the training distribution of each feature (and of the training score).

    Args:
        frame: reference rows (training data) holding every feature in ``kinds``.
        kinds: feature name to ``"numeric"`` or ``"categorical"``.
        n_bins: the number of quantile bins for numeric columns.
        scores: the model's scores on ``frame``; profiled as ``score`` when given.

    Returns:
        The profile; ``profile_to_dict`` turns it into the JSON contract.

    Raises:
        ReferenceProfileError: a feature is missing, of an unknown kind, or entirely null.
    """
    features: dict[str, ColumnReference] = {}
    for name, kind in kinds.items():
        if name not in frame.columns:
            raise ReferenceProfileError(
                f"Feature '{name}' is not a column of the reference frame; columns are "
                f"{sorted(map(str, frame.columns))}."
            )
        if kind == NUMERIC:
            features[name] = _numeric_reference(name, numeric_values(frame[name]), n_bins)
        elif kind == CATEGORICAL:
            features[name] = _categorical_reference(name, frame[name])
        else:
            raise ReferenceProfileError(
                f"Feature '{name}' has kind '{kind}'; expected '{NUMERIC}' or '{CATEGORICAL}'."
            )
    score = None
    if scores is not None:
        score = _numeric_reference(SCORE_KEY, numeric_values(np.asarray(scores)), n_bins)
    return ReferenceProfile(features=features, score=score)


def _numeric_to_dict(ref: NumericReference) -> dict[str, Any]:
    return {
        "kind": NUMERIC,
        "bin_edges": [ref.min, *ref.inner_edges.tolist(), ref.max],
        "frequencies": ref.frequencies.tolist(),
        "mean": ref.mean,
        "std": ref.std,
        "min": ref.min,
        "max": ref.max,
        "null_share": ref.null_share,
        "count": ref.count,
    }


def profile_to_dict(profile: ReferenceProfile) -> dict[str, Any]:
    """Serialise a profile to the JSON-ready contract of docs/architecture.md."""
    features: dict[str, Any] = {}
    for name, ref in profile.features.items():
        if isinstance(ref, NumericReference):
            features[name] = _numeric_to_dict(ref)
        else:
            features[name] = {
                "kind": CATEGORICAL,
                "frequencies": dict(ref.frequencies),
                "null_share": ref.null_share,
                "count": ref.count,
            }
    out: dict[str, Any] = {"features": features}
    if profile.score is not None:
        out[SCORE_KEY] = _numeric_to_dict(profile.score)
    return out


def _number(entry: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = entry.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise ReferenceProfileError(
            f"Reference profile entry '{where}' key '{key}' is {value!r}; expected a number."
        )
    return float(value)


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _parse_numeric(name: str, entry: Mapping[str, Any]) -> NumericReference:
    edges = entry.get("bin_edges")
    freqs = entry.get("frequencies")
    if not isinstance(edges, Sequence) or not isinstance(freqs, Sequence) or not freqs:
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' needs lists 'bin_edges' and 'frequencies'; got "
            f"bin_edges={edges!r}, frequencies={freqs!r}."
        )
    frequencies = np.asarray(freqs, dtype=np.float64)
    k = frequencies.size
    raw_edges = [_finite_or_none(e) for e in edges]
    if len(raw_edges) == k + 1:
        inner = raw_edges[1:-1]
        outer_lo, outer_hi = raw_edges[0], raw_edges[-1]
    elif len(raw_edges) == k - 1:
        inner, outer_lo, outer_hi = raw_edges, None, None
    else:
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has {len(raw_edges)} bin_edges for {k} frequencies; "
            f"expected {k + 1} (with outer edges) or {k - 1} (inner cut points)."
        )
    if any(e is None for e in inner):
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has a null or infinite inner bin edge in {edges!r}; "
            "only the first and last edges may be open."
        )
    inner_edges = np.asarray(inner, dtype=np.float64)
    finite = np.asarray([e for e in (outer_lo, *inner, outer_hi) if e is not None])
    if np.any(np.diff(inner_edges) <= 0) or np.any(np.diff(finite) < 0):
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has bin_edges {edges!r}; expected strictly "
            "increasing."
        )
    if np.any(frequencies < 0) or not math.isclose(float(frequencies.sum()), 1.0, abs_tol=1e-6):
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has frequencies summing to {frequencies.sum():.6f} "
            "(or negative); expected non-negative shares summing to 1."
        )
    lo = entry.get("min", outer_lo)
    hi = entry.get("max", outer_hi)
    lo = outer_lo if lo is None else float(lo)
    hi = outer_hi if hi is None else float(hi)
    if lo is None or hi is None:
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has no finite 'min'/'max' nor finite outer bin "
            "edges; expected the training minimum and maximum."
        )
    count = entry.get("count")
    return NumericReference(
        name=name,
        inner_edges=inner_edges,
        frequencies=frequencies,
        mean=_number(entry, "mean", name, default=float("nan")),
        std=_number(entry, "std", name, default=float("nan")),
        min=lo,
        max=hi,
        null_share=_number(entry, "null_share", name, default=0.0),
        count=int(count) if count is not None else None,
    )


def _parse_categorical(name: str, entry: Mapping[str, Any]) -> CategoricalReference:
    freqs = entry["frequencies"]
    if not freqs:
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has no categories in 'frequencies'; expected "
            "{category: share}."
        )
    frequencies = {str(k): float(v) for k, v in freqs.items()}
    total = sum(frequencies.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' has category shares summing to {total:.6f}; "
            "expected 1."
        )
    count = entry.get("count")
    return CategoricalReference(
        name=name,
        frequencies=frequencies,
        null_share=_number(entry, "null_share", name, default=0.0),
        count=int(count) if count is not None else None,
    )


def _parse_entry(name: str, entry: Any) -> ColumnReference:
    if not isinstance(entry, Mapping):
        raise ReferenceProfileError(
            f"Reference profile entry '{name}' is {type(entry).__name__}; expected a mapping."
        )
    kind = entry.get("kind")
    if kind is None:
        kind = CATEGORICAL if isinstance(entry.get("frequencies"), Mapping) else NUMERIC
    if kind == NUMERIC:
        return _parse_numeric(name, entry)
    if kind == CATEGORICAL:
        return _parse_categorical(name, entry)
    raise ReferenceProfileError(
        f"Reference profile entry '{name}' has kind {kind!r}; expected '{NUMERIC}' or "
        f"'{CATEGORICAL}'."
    )


def parse_reference_profile(raw: Mapping[str, Any]) -> ReferenceProfile:
    """Read a reference profile written to the docs/architecture.md contract.

    Args:
        raw: the loaded JSON document.

    Returns:
        The typed profile.

    Raises:
        ReferenceProfileError: an entry breaks the contract; the message names the entry and key.
    """
    if not isinstance(raw, Mapping):
        raise ReferenceProfileError(
            f"The reference profile is a {type(raw).__name__}; expected a JSON object."
        )
    body = raw.get("features", None)
    if body is None:
        body = {k: v for k, v in raw.items() if k != SCORE_KEY and isinstance(v, Mapping)}
    if isinstance(body, Sequence) and not isinstance(body, str | bytes):
        listed = {}
        for i, item in enumerate(body):
            if not isinstance(item, Mapping) or "name" not in item:
                raise ReferenceProfileError(
                    f"Reference profile 'features[{i}]' is {item!r}; expected an object with "
                    "'name'."
                )
            listed[str(item["name"])] = item
        body = listed
    if not isinstance(body, Mapping) or not body:
        raise ReferenceProfileError(
            "The reference profile holds no feature entries; expected 'features' with one entry "
            "per model feature."
        )
    features = {str(name): _parse_entry(str(name), entry) for name, entry in body.items()}
    score_raw = raw.get(SCORE_KEY)
    score = None
    if score_raw is not None:
        parsed = _parse_entry(SCORE_KEY, score_raw)
        if not isinstance(parsed, NumericReference):
            raise ReferenceProfileError(
                "Reference profile entry 'score' is categorical; expected a numeric profile."
            )
        score = parsed
    return ReferenceProfile(features=features, score=score)

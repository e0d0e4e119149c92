"""``reference_profile.json``: the training distribution of every feature and of the score.

There is one layout, written by :func:`profile_to_dict` and read by
:func:`parse_reference_profile`::

    {"features": {<name>: <entry>, ...}, "score": <numeric entry>}

* numeric entry: ``kind: "numeric"``, ``bin_edges`` (``[min, c_1, …, c_{k-1}, max]``: the
  training minimum, the inner quantile cut points and the training maximum; the first and last
  bins are open-ended, so a value below the minimum counts in the first bin and one above the
  maximum in the last), ``frequencies`` (``k`` shares of the non-null rows; bin ``i`` is
  ``[edge_i, edge_{i+1})``), ``mean``, ``std``, ``min``, ``max``, ``null_share``, ``count``;
* categorical entry: ``kind: "categorical"``, ``frequencies`` ``{category: share}`` over the
  non-null rows, ``null_share``, ``count``.

The profile is built from training data by :func:`churn_mlops.monitoring.profile.
build_reference_profile`; the monitoring pipeline, the export and the serving app read it here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from churn_mlops.contracts.errors import ProfileContractError

NUMERIC: Literal["numeric"] = "numeric"
CATEGORICAL: Literal["categorical"] = "categorical"
SCORE_KEY = "score"
FEATURES_KEY = "features"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class NumericReference:
    """Training distribution of one numeric column, binned on training quantiles."""

    name: str
    inner_edges: FloatArray
    frequencies: FloatArray
    mean: float
    std: float
    min: float
    max: float
    null_share: float = 0.0
    count: int | None = None
    kind: Literal["numeric"] = field(default=NUMERIC, init=False)


@dataclass(frozen=True)
class CategoricalReference:
    """Training distribution of one categorical column."""

    name: str
    frequencies: dict[str, float]
    null_share: float = 0.0
    count: int | None = None
    kind: Literal["categorical"] = field(default=CATEGORICAL, init=False)


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile:
    """Every feature's reference distribution plus the training-score distribution."""

    features: dict[str, ColumnReference]
    score: NumericReference | None = None

    def kinds(self) -> dict[str, str]:
        """Map each feature name to ``"numeric"`` or ``"categorical"``."""
        return {name: ref.kind for name, ref in self.features.items()}


# --------------------------------------------------------------------------- writing


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
    """Serialise a profile to the JSON-ready layout of this module's docstring."""
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
    out: dict[str, Any] = {FEATURES_KEY: features}
    if profile.score is not None:
        out[SCORE_KEY] = _numeric_to_dict(profile.score)
    return out


# --------------------------------------------------------------------------- reading


def _number(entry: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = entry.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileContractError(
            f"Reference profile entry '{where}' key '{key}' is {value!r}; expected a number."
        )
    return float(value)


def _count(entry: Mapping[str, Any], where: str) -> int | None:
    value = entry.get("count")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileContractError(
            f"Reference profile entry '{where}' key 'count' is {value!r}; expected a "
            "non-negative integer."
        )
    return value


def _shares(name: str, values: Any) -> FloatArray:
    try:
        shares = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProfileContractError(
            f"Reference profile entry '{name}' has frequencies {values!r}; expected numbers."
        ) from exc
    if shares.ndim != 1 or shares.size == 0:
        raise ProfileContractError(
            f"Reference profile entry '{name}' has frequencies {values!r}; expected a non-empty "
            "list."
        )
    if np.any(shares < 0) or not math.isclose(float(shares.sum()), 1.0, abs_tol=1e-6):
        raise ProfileContractError(
            f"Reference profile entry '{name}' has frequencies summing to {shares.sum():.6f} "
            "(or negative); expected non-negative shares summing to 1."
        )
    return shares


def _parse_numeric(name: str, entry: Mapping[str, Any]) -> NumericReference:
    edges = entry.get("bin_edges")
    frequencies = _shares(name, entry.get("frequencies"))
    k = frequencies.size
    if not isinstance(edges, list) or len(edges) != k + 1:
        raise ProfileContractError(
            f"Reference profile entry '{name}' has bin_edges {edges!r} for {k} frequencies; "
            f"expected a list of {k + 1} edges [min, cut points..., max]."
        )
    try:
        all_edges = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProfileContractError(
            f"Reference profile entry '{name}' has bin_edges {edges!r}; expected numbers."
        ) from exc
    if not np.all(np.isfinite(all_edges)) or np.any(np.diff(all_edges[1:-1]) <= 0):
        raise ProfileContractError(
            f"Reference profile entry '{name}' has bin_edges {edges!r}; expected finite edges "
            "with strictly increasing cut points."
        )
    if np.any(np.diff(all_edges) < 0):
        raise ProfileContractError(
            f"Reference profile entry '{name}' has bin_edges {edges!r}; expected increasing."
        )
    return NumericReference(
        name=name,
        inner_edges=all_edges[1:-1].copy(),
        frequencies=frequencies,
        mean=_number(entry, "mean", name, default=math.nan),
        std=_number(entry, "std", name, default=math.nan),
        min=_number(entry, "min", name, default=float(all_edges[0])),
        max=_number(entry, "max", name, default=float(all_edges[-1])),
        null_share=_number(entry, "null_share", name, default=0.0),
        count=_count(entry, name),
    )


def _parse_categorical(name: str, entry: Mapping[str, Any]) -> CategoricalReference:
    freqs = entry.get("frequencies")
    if not isinstance(freqs, Mapping) or not freqs:
        raise ProfileContractError(
            f"Reference profile entry '{name}' has frequencies {freqs!r}; expected a non-empty "
            "{category: share} object."
        )
    categories = [str(k) for k in freqs]
    shares = _shares(name, list(freqs.values()))
    return CategoricalReference(
        name=name,
        frequencies=dict(zip(categories, shares.tolist(), strict=True)),
        null_share=_number(entry, "null_share", name, default=0.0),
        count=_count(entry, name),
    )


def _parse_entry(name: str, entry: Any) -> ColumnReference:
    if not isinstance(entry, Mapping):
        raise ProfileContractError(
            f"Reference profile entry '{name}' is {type(entry).__name__}; expected an object."
        )
    kind = entry.get("kind")
    if kind == NUMERIC:
        return _parse_numeric(name, entry)
    if kind == CATEGORICAL:
        return _parse_categorical(name, entry)
    raise ProfileContractError(
        f"Reference profile entry '{name}' has kind {kind!r}; expected '{NUMERIC}' or "
        f"'{CATEGORICAL}'."
    )


def parse_reference_profile(raw: Any) -> ReferenceProfile:
    """Read a reference profile written by :func:`profile_to_dict`.

    Args:
        raw: The loaded JSON document.

    Returns:
        The typed profile.

    Raises:
        ProfileContractError: The document breaks the layout; the message names the entry and
            the key.
    """
    if not isinstance(raw, Mapping):
        raise ProfileContractError(
            f"The reference profile is a {type(raw).__name__}; expected a JSON object."
        )
    body = raw.get(FEATURES_KEY)
    if not isinstance(body, Mapping) or not body:
        raise ProfileContractError(
            f"The reference profile's '{FEATURES_KEY}' is {type(body).__name__}; expected an "
            f"object with one entry per model feature ({{name: entry}}), as written by "
            "profile_to_dict."
        )
    features = {str(name): _parse_entry(str(name), entry) for name, entry in body.items()}
    score_raw = raw.get(SCORE_KEY)
    score = None
    if score_raw is not None:
        parsed = _parse_entry(SCORE_KEY, score_raw)
        if not isinstance(parsed, NumericReference):
            raise ProfileContractError(
                "Reference profile entry 'score' is categorical; expected a numeric profile."
            )
        score = parsed
    return ReferenceProfile(features=features, score=score)

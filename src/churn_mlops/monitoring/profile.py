"""Build a reference profile from training data (the one writer of ``reference_profile.json``).

The layout, its serialisation (:func:`~churn_mlops.contracts.profile.profile_to_dict`) and its
one parser (:func:`~churn_mlops.contracts.profile.parse_reference_profile`) live in
:mod:`churn_mlops.contracts.profile`; this module turns training rows into that profile:

* numeric: quantile cut points between the training minimum and maximum (first and last bins
  open-ended), share of non-null rows per bin, mean, std, min, max, null share and count;
* categorical: share of each category over the non-null rows, null share and count.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churn_mlops.contracts.errors import ProfileContractError
from churn_mlops.contracts.profile import (
    CATEGORICAL,
    NUMERIC,
    SCORE_KEY,
    CategoricalReference,
    ColumnReference,
    NumericReference,
    ReferenceProfile,
)


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
        raise ProfileContractError(
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
        raise ProfileContractError(
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
        ProfileContractError: a feature is missing, of an unknown kind, or entirely null.
    """
    features: dict[str, ColumnReference] = {}
    for name, kind in kinds.items():
        if name not in frame.columns:
            raise ProfileContractError(
                f"Feature '{name}' is not a column of the reference frame; columns are "
                f"{sorted(map(str, frame.columns))}."
            )
        if kind == NUMERIC:
            features[name] = _numeric_reference(name, numeric_values(frame[name]), n_bins)
        elif kind == CATEGORICAL:
            features[name] = _categorical_reference(name, frame[name])
        else:
            raise ProfileContractError(
                f"Feature '{name}' has kind '{kind}'; expected '{NUMERIC}' or '{CATEGORICAL}'."
            )
    score = None
    if scores is not None:
        score = _numeric_reference(SCORE_KEY, numeric_values(np.asarray(scores)), n_bins)
    return ReferenceProfile(features=features, score=score)

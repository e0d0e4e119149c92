"""Drift statistics shared by the monitoring pipeline and the serving app's live metrics.

Both bin live values on the reference profile's cut points and compare shares with the
population stability index, so a dashboard and a drift report agree on the same window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

PSI_EPSILON = 1e-4
"""Share given to an empty bucket (the monitoring parameters' default ``epsilon``)."""


def bin_numeric(
    values: npt.ArrayLike, cut_points: Sequence[float] | npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """Bin index of every value on a profile's inner cut points; NaN gets its own bucket.

    Bin ``i`` is ``[c_i, c_{i+1})`` with the first and last bins open-ended, so values fall in
    ``0 .. len(cut_points)``; a NaN goes to the extra bucket ``len(cut_points) + 1``.
    """
    array = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(np.asarray(cut_points, dtype=np.float64), array, side="right")
    idx[np.isnan(array)] = len(cut_points) + 1
    return idx


def psi_and_kl(
    expected: npt.ArrayLike, actual: npt.ArrayLike, *, epsilon: float = PSI_EPSILON
) -> tuple[float, float]:
    """PSI and KL(expected ‖ actual) of two share vectors; an empty bucket counts as ``epsilon``.

    ``PSI = sum((p - q) * ln(p / q))``; KL is computed after renormalising the
    epsilon-filled shares so both sum to one.
    """
    p = np.asarray(expected, dtype=np.float64)
    q = np.asarray(actual, dtype=np.float64)
    p = np.where(p > 0, p, epsilon)
    q = np.where(q > 0, q, epsilon)
    log_ratio = np.log(p / q)
    psi = float(np.sum((p - q) * log_ratio))
    p_n, q_n = p / p.sum(), q / q.sum()
    kl = float(np.sum(p_n * np.log(p_n / q_n)))
    return psi, kl


def population_stability_index(
    expected: npt.ArrayLike, actual: npt.ArrayLike, *, epsilon: float = PSI_EPSILON
) -> float:
    """PSI = sum((p - q) * ln(p / q)) over buckets; an empty bucket counts as ``epsilon``."""
    return psi_and_kl(expected, actual, epsilon=epsilon)[0]

"""PSI, KL and binning: the statistics the monitoring pipeline and serving share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from churn_mlops.contracts.statistics import (
    PSI_EPSILON,
    bin_numeric,
    population_stability_index,
    psi_and_kl,
)


def test_bins_are_left_closed_with_open_ends_and_a_null_bucket():
    values = np.array([-5.0, 0.999, 1.0, 2.0, 4.9, 5.0, 99.0, np.nan])
    assert bin_numeric(values, [1.0, 2.0, 5.0]).tolist() == [0, 0, 1, 2, 2, 3, 3, 4]


def test_psi_and_kl_by_hand():
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    psi, kl = psi_and_kl(p, q)
    assert psi == pytest.approx(0.25 * math.log(2) + (-0.25) * math.log(0.5 / 0.75))
    assert kl == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    assert population_stability_index(p, p) == 0.0


def test_an_empty_bucket_counts_as_epsilon():
    gap = population_stability_index(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert gap == pytest.approx(2 * (1 - PSI_EPSILON) * math.log(1 / PSI_EPSILON))

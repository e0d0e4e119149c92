"""Tests of building a reference profile from training data and its JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churn_mlops.contracts.profile import (
    NumericReference,
    parse_reference_profile,
    profile_to_dict,
)
from churn_mlops.monitoring.errors import ProfileContractError
from churn_mlops.monitoring.profile import build_reference_profile


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, 2000),
            "tickets": rng.poisson(0.3, 2000),
            "fee": rng.lognormal(3, 0.3, 2000),
            "flag": rng.random(2000) < 0.4,
            "plan": rng.choice(["basic", "premium"], 2000),
        }
    )


KINDS = {
    "age": "numeric",
    "tickets": "numeric",
    "fee": "numeric",
    "flag": "numeric",
    "plan": "categorical",
}


def test_round_trip_through_json(frame):
    profile = build_reference_profile(frame, KINDS, n_bins=10, scores=np.linspace(0, 1, 2000))
    raw = json.loads(json.dumps(profile_to_dict(profile)))
    back = parse_reference_profile(raw)
    assert back.kinds() == KINDS
    for name, ref in profile.features.items():
        other = back.features[name]
        if isinstance(ref, NumericReference):
            np.testing.assert_allclose(other.inner_edges, ref.inner_edges)
            np.testing.assert_allclose(other.frequencies, ref.frequencies)
            assert (other.min, other.max, other.count) == (ref.min, ref.max, ref.count)
        else:
            assert other.frequencies == ref.frequencies
    assert back.score is not None and back.score.max == 1.0


def test_numeric_entry_follows_the_contract(frame):
    entry = profile_to_dict(build_reference_profile(frame, KINDS, n_bins=10))["features"]["fee"]
    assert set(entry) >= {"bin_edges", "frequencies", "mean", "std", "min", "max", "null_share"}
    assert len(entry["bin_edges"]) == len(entry["frequencies"]) + 1
    assert entry["bin_edges"][0] == entry["min"] and entry["bin_edges"][-1] == entry["max"]
    assert sum(entry["frequencies"]) == pytest.approx(1.0)
    assert np.allclose(entry["frequencies"], 0.1, atol=0.01)  # quantile bins


def test_count_feature_gets_no_empty_bins(frame):
    entry = profile_to_dict(build_reference_profile(frame, KINDS, n_bins=10))["features"]["tickets"]
    assert entry["bin_edges"][1] > entry["min"]
    assert min(entry["frequencies"]) > 0
    assert entry["frequencies"][0] == pytest.approx(float((frame["tickets"] == 0).mean()))


def test_builder_rejects_missing_and_all_null_columns(frame):
    with pytest.raises(ProfileContractError, match="'nope' is not a column"):
        build_reference_profile(frame, {"nope": "numeric"}, n_bins=5)
    with pytest.raises(ProfileContractError, match="'fee': it has no finite value"):
        build_reference_profile(frame.assign(fee=np.nan), {"fee": "numeric"}, n_bins=5)

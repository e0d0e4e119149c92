"""Tests of the drift statistics against the reference profile (the monitoring pipeline's path)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from churn_mlops.monitoring.drift import (
    DriftConfig,
    apply_thresholds,
    drift_against_profile,
    ks_p_value,
    score_drift,
    summarise_drift,
)
from churn_mlops.monitoring.errors import DriftInputError
from churn_mlops.monitoring.profile import build_reference_profile

N_BINS = 10


def make_config(**overrides) -> DriftConfig:
    base = {
        "statistics": {
            "psi": {"threshold": 0.2, "min_samples": 100},
            "kl": {"threshold": 0.1, "min_samples": 100},
            "wasserstein": {"threshold": 0.1, "min_samples": 30},
            "ks": {"alpha": 0.01, "min_statistic": 0.1, "min_samples": 30},
            "chi2": {"alpha": 0.01, "min_effect": 0.1, "min_samples": 30},
        },
        "epsilon": 1e-4,
        "feature_vote_share": 0.5,
        "dataset_drift_share": 0.5,
        "workers": 1,
    }
    base.update(overrides)
    return DriftConfig.model_validate(base)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


KINDS = {"x": "numeric", "k": "numeric", "c": "categorical"}


def drift(ref, cur, kinds, config, *, n_bins=N_BINS):
    """What the monitoring pipeline does: profile the reference once, compare the window to it."""
    profile = build_reference_profile(ref, kinds, n_bins=n_bins)
    return drift_against_profile(profile, cur, config, features=list(kinds))


def frames(rng: np.random.Generator, n: int, m: int, *, shift: float = 0.0):
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.poisson(3, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(shift, 1, size=m),
            "k": rng.poisson(3 + 2 * shift, m),
            "c": rng.choice(["a", "b", "c"], m, p=[0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift]),
        }
    )
    return ref, cur


def test_psi_and_kl_follow_their_formulas_on_reference_quantile_bins():
    ref = pd.DataFrame({"x": np.arange(1000.0)})
    cur = pd.DataFrame({"x": np.concatenate([np.arange(0.0, 500.0), np.full(500, 950.0)])})
    row = drift(ref, cur, {"x": "numeric"}, make_config(), n_bins=4).iloc[0]
    p = np.full(4, 0.25)  # reference quartiles: cuts at 250, 500, 750
    q = np.array([0.25, 0.25, 0.0, 0.5])
    q_eps = np.where(q > 0, q, 1e-4)
    assert row["psi"] == pytest.approx(np.sum((p - q_eps) * np.log(p / q_eps)))
    assert row["kl"] == pytest.approx(stats.entropy(p, q_eps))


def test_chi2_is_goodness_of_fit_to_reference_shares(rng):
    ref, cur = frames(rng, 4000, 3000, shift=0.2)
    row = drift(ref, cur, {"c": "categorical"}, make_config()).iloc[0]
    ref_share = ref["c"].value_counts(normalize=True).sort_index()
    observed = cur["c"].value_counts().reindex(ref_share.index).to_numpy()
    expected = stats.chisquare(observed, ref_share.to_numpy() * len(cur))
    assert row["chi2_statistic"] == pytest.approx(expected.statistic)
    assert row["chi2_p_value"] == pytest.approx(expected.pvalue)
    assert row["chi2_effect"] == pytest.approx(math.sqrt(expected.statistic / len(cur)))
    assert math.isnan(row["ks_statistic"]) and math.isnan(row["wasserstein"])


def test_new_category_fires_chi2(rng):
    ref, cur = frames(rng, 2000, 2000)
    cur.loc[:99, "c"] = "brand_new"
    row = drift(ref, cur, {"c": "categorical"}, make_config()).iloc[0]
    assert row["chi2_statistic"] == math.inf and row["chi2_p_value"] == 0.0
    assert bool(row["chi2_drift"])


def test_same_distribution_does_not_drift_and_shift_does(rng):
    ref, same = frames(rng, 20_000, 5000)
    _, shifted = frames(rng, 20_000, 5000, shift=0.6)
    config = make_config()
    calm = drift(ref, same, KINDS, config)
    moved = drift(ref, shifted, KINDS, config)
    assert not calm["drifted"].any()
    assert moved["drifted"].all()
    assert summarise_drift(moved, config)["dataset_drift"] is True
    assert summarise_drift(calm, config) == {
        "n_features": 3,
        "n_drifted": 0,
        "drifted_features": [],
        "drift_share": 0.0,
        "dataset_drift": False,
        "trend_features_drifted": [],
        "insufficient_features": [],
        "insufficient_data": False,
    }


def test_profile_path_sees_a_unit_change(rng):
    ref, cur = frames(rng, 10_000, 3000)
    config = make_config()
    profile = build_reference_profile(ref, KINDS, n_bins=N_BINS)
    scaled = cur.assign(x=cur["x"].abs() * 100)
    row = drift_against_profile(profile, scaled, config, features=["x"]).iloc[0]
    assert row["wasserstein"] > 10
    assert row["psi_drift"] and row["ks_drift"] and row["drifted"]


def test_profile_of_itself_is_no_drift(rng):
    ref, _ = frames(rng, 5000, 10)
    config = make_config()
    profile = build_reference_profile(ref, KINDS, n_bins=N_BINS)
    table = drift_against_profile(profile, ref, config)
    assert np.allclose(table["psi"], 0) and np.allclose(table["kl"], 0)
    assert np.allclose(table["ks_statistic"].dropna(), 0)
    assert np.allclose(table["wasserstein"].dropna(), 0)
    assert not table["drifted"].any()


def test_score_drift_uses_the_score_profile(rng):
    ref, _ = frames(rng, 5000, 10)
    scores = rng.beta(2, 6, 5000)
    config = make_config()
    profile = build_reference_profile(ref, KINDS, n_bins=10, scores=scores)
    assert not score_drift(profile, rng.beta(2, 6, 3000), config)["drifted"].iloc[0]
    assert score_drift(profile, rng.beta(4, 4, 3000), config)["drifted"].iloc[0]
    no_score = build_reference_profile(ref, KINDS, n_bins=10)
    with pytest.raises(DriftInputError, match="no 'score' entry"):
        score_drift(no_score, scores, config)


def test_missing_column_is_named(rng):
    ref, cur = frames(rng, 100, 100)
    with pytest.raises(DriftInputError, match=r"current frame lacks feature column\(s\) \['k'\]"):
        drift(ref, cur.drop(columns="k"), KINDS, make_config())


def test_empty_current_column_neither_fires_nor_counts(rng):
    ref, cur = frames(rng, 500, 200)
    cur["x"] = np.nan
    row = drift(ref, cur, {"x": "numeric"}, make_config()).iloc[0]
    assert row["null_share_current"] == 1.0
    assert row["n_statistics"] == 0 and not row["drifted"]


def test_verdict_needs_the_vote_share():
    table = pd.DataFrame(
        {
            "feature": ["a", "b"],
            "kind": ["numeric", "numeric"],
            "n_current": [1000, 1000],
            "psi": [0.5, 0.5],
            "kl": [0.0, 0.5],
            "wasserstein": [0.0, 0.0],
            "ks_statistic": [0.0, 0.0],
            "ks_p_value": [1.0, 1.0],
            "chi2_statistic": [np.nan, np.nan],
            "chi2_p_value": [np.nan, np.nan],
            "chi2_effect": [np.nan, np.nan],
        }
    )
    out = apply_thresholds(table, make_config())
    assert out["votes"].tolist() == [1, 2]
    assert out["n_statistics"].tolist() == [4, 4]
    assert out["drifted"].tolist() == [False, True]
    assert apply_thresholds(table, make_config(feature_vote_share=0.25))["drifted"].all()


def test_ks_test_needs_the_minimum_effect(rng):
    """A large window makes tiny shifts significant; min_statistic keeps them from firing."""
    ref = pd.DataFrame({"x": rng.normal(size=200_000)})
    cur = pd.DataFrame({"x": rng.normal(0.03, 1, size=200_000)})
    row = drift(ref, cur, {"x": "numeric"}, make_config()).iloc[0]
    assert row["ks_p_value"] < 1e-6
    assert not row["ks_drift"]
    loose = make_config(
        statistics={
            **make_config().statistics.model_dump(),
            "ks": {"alpha": 0.01, "min_statistic": 0.0, "min_samples": 30},
        }
    )
    assert drift(ref, cur, {"x": "numeric"}, loose).iloc[0]["ks_drift"]


@pytest.mark.parametrize("n", [50, 5000, 10_001, 200_000])
def test_ks_p_value_is_close_to_the_exact_distribution(n):
    for d in np.linspace(0.2, 3.0, 8) / math.sqrt(n):
        assert ks_p_value(float(d), n) == pytest.approx(stats.kstwo.sf(d, n), abs=2e-3)


def test_threads_give_the_same_table(rng):
    ref, cur = frames(rng, 3000, 3000, shift=0.2)
    one = drift(ref, cur, KINDS, make_config(workers=1))
    two = drift(ref, cur, KINDS, make_config(workers=2))
    pd.testing.assert_frame_equal(one, two)


def test_trend_features_are_reported_but_do_not_count(rng):
    ref, _ = frames(rng, 20_000, 10)
    _, shifted = frames(rng, 20_000, 5000, shift=0.6)
    config = make_config(trend_features=["x"])
    table = drift(ref, shifted, KINDS, config)
    assert table.set_index("feature").loc["x", "drifted"]
    summary = summarise_drift(table, config)
    assert summary["drifted_features"] == ["k", "c"]
    assert summary["trend_features_drifted"] == ["x"]
    assert summary["n_features"] == 2


def test_a_window_below_every_minimum_sample_says_insufficient_data() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"x": rng.normal(size=2000), "plan": rng.choice(["a", "b", "c"], size=2000)}
    )
    profile = build_reference_profile(reference, {"x": "numeric", "plan": "categorical"}, n_bins=10)
    # One row far outside the reference: every statistic would fire on it.
    one_row = pd.DataFrame({"x": [50.0], "plan": ["z"]})
    config = make_config()
    table = drift_against_profile(profile, one_row, config)
    assert table["insufficient_data"].all()
    assert not table["drifted"].any()
    assert (table["n_statistics"] == 0).all()
    summary = summarise_drift(table, config)
    assert summary["insufficient_data"] is True
    assert summary["n_drifted"] == 0 and not summary["dataset_drift"]
    assert sorted(summary["insufficient_features"]) == ["plan", "x"]


def test_each_statistic_is_judged_only_from_its_own_minimum_sample() -> None:
    rng = np.random.default_rng(4)
    profile = build_reference_profile(
        pd.DataFrame({"x": rng.normal(size=2000)}), {"x": "numeric"}, n_bins=10
    )
    shifted = pd.DataFrame({"x": rng.normal(loc=3.0, size=50)})
    # 50 rows: KS and Wasserstein (min 30) are judged, PSI and KL (min 100) are not.
    row = drift_against_profile(profile, shifted, make_config()).iloc[0]
    assert row["n_statistics"] == 2
    assert row["ks_drift"] and row["wasserstein_drift"]
    assert not row["psi_drift"] and not row["kl_drift"]
    assert row["drifted"] and not row["insufficient_data"]

"""Live PSI: binning convention, sliding window, and agreement with the monitoring pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from churn_mlops.contracts.profile import parse_reference_profile
from churn_mlops.contracts.statistics import (
    PSI_EPSILON,
    bin_numeric,
    population_stability_index,
)
from churn_mlops.monitoring import drift as monitoring
from churn_mlops.release.demo import (
    FEATURES,
    build_reference_profile,
    make_synthetic_features,
)
from churn_mlops.serving.bundle import BundleError, read_reference_profile
from churn_mlops.serving.drift import SlidingWindowDrift


@pytest.fixture(scope="module")
def reference():
    features, _ = make_synthetic_features(4000, seed=21)
    raw = build_reference_profile(features, np.linspace(0, 1, len(features)))
    return features, parse_reference_profile(raw), raw


def rows_of(frame) -> list[dict]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def test_bins_are_left_closed_with_open_ends_and_a_null_bucket() -> None:
    cuts = [1.0, 2.0, 5.0]
    values = np.array([-100.0, 0.99, 1.0, 1.5, 2.0, 4.99, 5.0, 1e9, np.nan])
    assert bin_numeric(values, cuts).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4]


def test_psi_formula_and_empty_buckets() -> None:
    same = np.array([0.2, 0.3, 0.5])
    assert population_stability_index(same, same) == 0.0
    shifted = np.array([0.5, 0.3, 0.2])
    expected = float(np.sum((same - shifted) * np.log(same / shifted)))
    assert population_stability_index(same, shifted) == pytest.approx(expected)
    gap = population_stability_index(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert gap == pytest.approx(2 * (1 - PSI_EPSILON) * np.log(1 / PSI_EPSILON))


def test_window_psi_is_small_in_distribution_and_large_under_drift(reference) -> None:
    features, profile, _ = reference
    drift = SlidingWindowDrift(profile, FEATURES, window=1000, min_samples=100)
    assert drift.psi() == {}  # nothing before min_samples
    fresh, _ = make_synthetic_features(1000, seed=99)
    drift.observe(rows_of(fresh))
    calm = drift.psi()
    assert set(calm) == set(FEATURES)
    assert max(calm.values()) < 0.05, calm
    shifted = fresh.assign(
        monthly_fee=fresh["monthly_fee"] * 3,
        contract="month_to_month",
    )
    drift.observe(rows_of(shifted))  # the whole window turns over
    hot = drift.psi()
    assert hot["monthly_fee"] > 1.0 and hot["contract"] > 0.5
    assert hot["age"] < 0.05  # untouched features stay calm


def test_sliding_window_counts_equal_a_fresh_count(reference) -> None:
    _, profile, _ = reference
    frame, _ = make_synthetic_features(2500, seed=5)
    rows = rows_of(frame)
    incremental = SlidingWindowDrift(profile, FEATURES, window=700, min_samples=1)
    for start in range(0, len(rows), 333):  # uneven chunks, wrapping the ring several times
        incremental.observe(rows[start : start + 333])
        incremental.psi()
    fresh = SlidingWindowDrift(profile, FEATURES, window=700, min_samples=1)
    fresh.observe(rows[-700:])
    assert incremental.size == fresh.size == 700
    for name, value in fresh.psi().items():
        assert incremental.psi()[name] == pytest.approx(value, abs=1e-12)


def test_unknown_categories_and_nulls(reference) -> None:
    _, profile, _ = reference
    drift = SlidingWindowDrift(profile, ["region", "age"], window=100, min_samples=1)
    drift.observe([{"region": "mars", "age": None}] * 50 + [{"region": None, "age": 30.0}] * 50)
    psi = drift.psi()
    assert psi["region"] > 5  # every live row is a category the training data never had
    assert "age" in psi  # nulls are left out, the 50 present values still count


def test_psi_matches_the_monitoring_pipeline(reference) -> None:
    """The dashboard's live PSI and the monitoring report's PSI agree on the same rows."""
    import pandas as pd
    import yaml

    params = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "conf/base/parameters_monitoring.yml").read_text()
    )
    config = monitoring.DriftConfig(**params["monitoring"]["drift"])
    _, profile, raw = reference
    current, _ = make_synthetic_features(800, seed=8)
    current = current.assign(monthly_fee=current["monthly_fee"] * 1.5)
    current.loc[current.index[::10], "age"] = np.nan
    drift = SlidingWindowDrift(profile, FEATURES, window=800, min_samples=1)
    drift.observe(rows_of(current))
    ours = drift.psi()
    table = monitoring.drift_against_profile(profile, pd.DataFrame(current), config)
    theirs = dict(zip(table["feature"], table["psi"], strict=True))
    assert ours["monthly_fee"] > 0.2  # a real shift, not two zeros agreeing
    for name in FEATURES:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-12), name


def test_bundle_profile_errors_name_the_file(tmp_path: Path, reference) -> None:
    """The bundle reader uses the one contract parser and says which file broke it."""
    _, _, raw = reference
    listed = {"features": [{"name": k, **v} for k, v in raw["features"].items()]}
    (tmp_path / "reference_profile.json").write_text(json.dumps(listed), encoding="utf-8")
    with pytest.raises(BundleError, match="reference_profile.json: .*'features' is list"):
        read_reference_profile(tmp_path)
    broken = json.loads(json.dumps(raw))
    broken["features"]["age"]["frequencies"] = [1.0]
    (tmp_path / "reference_profile.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(BundleError, match="entry 'age' has bin_edges"):
        read_reference_profile(tmp_path)
    (tmp_path / "reference_profile.json").unlink()
    with pytest.raises(BundleError, match="reference_profile.json is missing"):
        read_reference_profile(tmp_path)

"""Each scenario shifts what it claims, from its start month on, and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

SCENARIO_START = pd.Timestamp("2023-07-01")  # month index 6 in the small setup
Simulate = Callable[..., dict[str, pd.DataFrame]]


def _new_signups(customers: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Ages of customers signing up in the period before and from the scenario start."""
    new = customers[customers["signup_date"] >= pd.Timestamp("2023-01-01")]
    return (
        new.loc[new["signup_date"] < SCENARIO_START, "age"],
        new.loc[new["signup_date"] >= SCENARIO_START, "age"],
    )


def _churn_by_online_spend(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Churn next month by online spend in the 90 days before each month start (raw tables).

    Returns one row per (customer, month start) at risk, from the fourth month on so that
    every window is complete, with ``spend``, ``churned`` and ``after`` (scenario started).
    """
    customers = tables["customers"].merge(tables["churn_records"], how="left")
    events = tables["events"]
    purchases = events[events["event_type"] == "online_purchase"]
    frames = []
    for month in pd.date_range("2023-04-01", "2023-12-01", freq="MS"):
        at_risk = customers[
            (customers["signup_date"] < month)
            & (customers["churn_date"].isna() | (customers["churn_date"] >= month))
        ]
        window = purchases[
            (purchases["event_time"] >= month - pd.Timedelta(days=90))
            & (purchases["event_time"] < month)
        ]
        spend = window.groupby("customer_id")["amount"].sum()
        frames.append(
            pd.DataFrame(
                {
                    "spend": spend.reindex(at_risk["customer_id"]).fillna(0.0).to_numpy(),
                    "churned": (at_risk["churn_date"] < month + pd.offsets.MonthBegin(1))
                    .to_numpy()
                    .astype(int),
                    "after": month >= SCENARIO_START,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _high_minus_low_churn(frame: pd.DataFrame) -> float:
    """Churn rate of customers with online spend minus that of customers without."""
    high = frame["spend"] > 0
    return float(frame.loc[high, "churned"].mean() - frame.loc[~high, "churned"].mean())


def test_baseline_is_stable(small_tables: dict[str, pd.DataFrame]) -> None:
    before, after = _new_signups(small_tables["customers"])
    assert abs(before.mean() - after.mean()) < 2.0
    assert after.between(18, 45).all()
    by_spend = _churn_by_online_spend(small_tables)
    assert _high_minus_low_churn(by_spend[~by_spend["after"]]) < 0
    assert _high_minus_low_churn(by_spend[by_spend["after"]]) < 0
    events = small_tables["events"]
    sessions = events[events["event_type"] == "session"]
    assert (sessions["duration_minutes"] >= 0).all()
    payments = events[events["event_type"] == "payment"]
    late = payments["event_time"] >= SCENARIO_START
    assert payments.loc[late, "amount"].median() == pytest.approx(
        payments.loc[~late, "amount"].median(), rel=0.2
    )


def test_age_shift_moves_new_signup_ages_only(
    small_tables: dict[str, pd.DataFrame], simulate_small: Simulate
) -> None:
    shifted = simulate_small(scenario={"name": "age_shift"})
    before, after = _new_signups(shifted["customers"])
    assert before.between(18, 45).all() and before.between(20, 40).mean() > 0.9
    assert after.between(50, 80).all()
    assert after.mean() > before.mean() + 25
    # Everybody else, and every other attribute, is what the baseline drew.
    base, changed = small_tables["customers"], shifted["customers"]
    pd.testing.assert_frame_equal(base.drop(columns="age"), changed.drop(columns="age"))
    kept = base["signup_date"] < SCENARIO_START
    pd.testing.assert_series_equal(base.loc[kept, "age"], changed.loc[kept, "age"])


def test_online_spend_flip_reverses_who_churns_with_similar_spend(
    small_tables: dict[str, pd.DataFrame], simulate_small: Simulate
) -> None:
    flipped = _churn_by_online_spend(simulate_small(scenario={"name": "online_spend_flip"}))
    before, after = flipped[~flipped["after"]], flipped[flipped["after"]]
    assert _high_minus_low_churn(before) < -0.01, "before the start spenders churn less"
    assert _high_minus_low_churn(after) > 0.01, "after the start spenders churn more"
    # The input distribution stays similar: same share of spenders and spend per spender.
    assert (after["spend"] > 0).mean() == pytest.approx((before["spend"] > 0).mean(), abs=0.05)
    spenders_before = before.loc[before["spend"] > 0, "spend"].median()
    spenders_after = after.loc[after["spend"] > 0, "spend"].median()
    assert spenders_after == pytest.approx(spenders_before, rel=0.2)
    # Customers are drawn exactly as in the baseline: only the hazard changed.
    pd.testing.assert_frame_equal(
        simulate_small(scenario={"name": "online_spend_flip"})["customers"],
        small_tables["customers"],
    )


@pytest.mark.parametrize("column", ["duration_minutes", "amount"])
def test_data_quality_corrupts_event_column_after_start_only(
    small_tables: dict[str, pd.DataFrame], simulate_small: Simulate, column: str
) -> None:
    rates = {"null_rate": 0.05, "out_of_range_rate": 0.02}
    corrupted = simulate_small(
        scenario={"name": "data_quality", "data_quality": {"column": f"events.{column}", **rates}}
    )["events"]
    clean = small_tables["events"]
    pd.testing.assert_frame_equal(corrupted.drop(columns=column), clean.drop(columns=column))
    should_have_value = clean[column].notna()
    after = clean["event_time"] >= SCENARIO_START
    before_values = corrupted.loc[~after & should_have_value, column]
    assert before_values.notna().all() and (before_values >= 0).all()
    pd.testing.assert_series_equal(before_values, clean.loc[~after & should_have_value, column])
    after_values = corrupted.loc[after & should_have_value, column]
    assert after_values.isna().mean() == pytest.approx(0.05, abs=0.01)
    assert (after_values < 0).mean() == pytest.approx(0.02, abs=0.006)
    assert corrupted.loc[~should_have_value, column].isna().all()


@pytest.mark.parametrize(("column", "dtype"), [("age", "Int64"), ("monthly_fee", "float64")])
def test_data_quality_corrupts_new_signups_customer_column(
    small_tables: dict[str, pd.DataFrame], simulate_small: Simulate, column: str, dtype: str
) -> None:
    customers = simulate_small(
        scenario={
            "name": "data_quality",
            "data_quality": {
                "column": f"customers.{column}",
                "null_rate": 0.2,
                "out_of_range_rate": 0.1,
            },
        }
    )["customers"]
    clean = small_tables["customers"]
    assert str(customers[column].dtype) == dtype
    pd.testing.assert_frame_equal(customers.drop(columns=column), clean.drop(columns=column))
    after = customers["signup_date"] >= SCENARIO_START
    np.testing.assert_array_equal(
        customers.loc[~after, column].to_numpy(float), clean.loc[~after, column].to_numpy(float)
    )
    new_values = customers.loc[after, column]
    assert new_values.isna().mean() == pytest.approx(0.2, abs=0.08)
    assert (new_values < 0).mean() == pytest.approx(0.1, abs=0.06)


def test_feature_change_sends_amounts_in_cents_after_start(
    small_tables: dict[str, pd.DataFrame], simulate_small: Simulate
) -> None:
    changed = simulate_small(scenario={"name": "feature_change"})["events"]
    clean = small_tables["events"]
    pd.testing.assert_frame_equal(changed.drop(columns="amount"), clean.drop(columns="amount"))
    after = clean["event_time"] >= SCENARIO_START
    pd.testing.assert_series_equal(changed.loc[~after, "amount"], clean.loc[~after, "amount"])
    np.testing.assert_allclose(changed.loc[after, "amount"], clean.loc[after, "amount"] * 100)
    assert changed.loc[after, "amount"].notna().sum() > 0

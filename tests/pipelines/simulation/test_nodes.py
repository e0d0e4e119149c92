"""Tests of the simulation nodes: the raw-table contract, reproducibility and the hazard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churn_mlops.pipelines.simulation import merge_parameters, simulate
from churn_mlops.pipelines.simulation.nodes import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    build_raw_customers,
    hazard_logit,
    simulate_customer_profiles,
    validate_parameters,
)
from churn_mlops.pipelines.simulation.params import SimulationParameterError

START = pd.Timestamp("2023-01-01")
END = pd.Timestamp("2024-01-01")  # 12 months in the small setup

# Contract of docs/data_model.md (raw tables).
CUSTOMER_DTYPES = {
    "customer_id": "int64",
    "signup_date": "datetime64[ns]",
    "age": "int64",
    "region": "object",
    "plan": "object",
    "contract": "object",
    "payment_method": "object",
    "paperless_billing": "bool",
    "monthly_fee": "float64",
}
EVENT_DTYPES = {
    "customer_id": "int64",
    "event_time": "datetime64[ns]",
    "event_type": "object",
    "amount": "float64",
    "duration_minutes": "float64",
}
CATEGORIES = {
    "region": {"north", "south", "east", "west", "central"},
    "plan": {"basic", "standard", "premium"},
    "contract": {"month_to_month", "one_year", "two_year"},
    "payment_method": {"credit_card", "bank_transfer", "electronic_check", "mailed_check"},
}


def test_customers_follow_the_raw_contract(small_tables: dict[str, pd.DataFrame]) -> None:
    customers = small_tables["customers"]
    assert tuple(customers.columns) == CUSTOMER_COLUMNS
    assert customers.dtypes.astype(str).to_dict() == CUSTOMER_DTYPES
    assert len(customers) == 1_500
    assert customers["customer_id"].is_unique and (customers["customer_id"] > 0).all()
    assert customers["age"].between(18, 100).all()
    assert customers["monthly_fee"].between(0, 1000).all()
    assert (customers["signup_date"] == customers["signup_date"].dt.normalize()).all()
    assert (customers["signup_date"] < END).all()
    assert (customers["signup_date"] < START).sum() == 900
    for column, allowed in CATEGORIES.items():
        assert set(customers[column]) == allowed, column


def test_events_follow_the_raw_contract(small_tables: dict[str, pd.DataFrame]) -> None:
    events = small_tables["events"]
    assert tuple(events.columns) == EVENT_COLUMNS
    assert events.dtypes.astype(str).to_dict() == EVENT_DTYPES
    assert set(events["event_type"]) == set(EVENT_TYPES)
    assert events["event_time"].between(START, END, inclusive="left").all()
    assert events["event_time"].is_monotonic_increasing
    with_amount = events["event_type"].isin(["payment", "late_payment", "online_purchase"])
    assert events.loc[with_amount, "amount"].notna().all()
    assert (events.loc[with_amount, "amount"] >= 0).all()
    assert events.loc[~with_amount, "amount"].isna().all()
    is_session = events["event_type"] == "session"
    assert (events.loc[is_session, "duration_minutes"] >= 0).all()
    assert events.loc[is_session, "duration_minutes"].notna().all()
    assert events.loc[~is_session, "duration_minutes"].isna().all()


def test_churn_records_follow_the_raw_contract(small_tables: dict[str, pd.DataFrame]) -> None:
    churn = small_tables["churn_records"]
    assert churn.dtypes.astype(str).to_dict() == {
        "customer_id": "int64",
        "churn_date": "datetime64[ns]",
    }
    assert churn["customer_id"].is_unique
    assert churn["customer_id"].isin(small_tables["customers"]["customer_id"]).all()
    assert churn["churn_date"].between(START, END, inclusive="left").all()
    assert (churn["churn_date"] == churn["churn_date"].dt.normalize()).all()


def test_events_only_while_a_customer_is_subscribed(small_tables: dict[str, pd.DataFrame]) -> None:
    events = small_tables["events"].merge(
        small_tables["customers"][["customer_id", "signup_date"]], how="left", indicator=True
    )
    assert (events["_merge"] == "both").all(), "events for unknown customers"
    assert (events["event_time"] >= events["signup_date"]).all()
    events = events.drop(columns="_merge").merge(small_tables["churn_records"], how="left")
    churned = events["churn_date"].notna()
    assert churned.any()
    assert (events.loc[churned, "event_time"] < events.loc[churned, "churn_date"]).all()


def test_a_customer_churns_after_signing_up(small_tables: dict[str, pd.DataFrame]) -> None:
    merged = small_tables["churn_records"].merge(small_tables["customers"])
    assert (merged["churn_date"] > merged["signup_date"]).all()


def test_payments_are_monthly_and_charge_the_fee(small_tables: dict[str, pd.DataFrame]) -> None:
    events, customers = small_tables["events"], small_tables["customers"]
    payments = events[events["event_type"].isin(["payment", "late_payment"])].merge(
        customers[["customer_id", "monthly_fee"]]
    )
    np.testing.assert_allclose(payments["amount"], payments["monthly_fee"])
    per_month = payments.groupby(["customer_id", payments["event_time"].dt.to_period("M")]).size()
    assert per_month.max() == 1
    # A customer subscribed for the whole period pays every month.
    stayers = customers.loc[
        (customers["signup_date"] < START)
        & ~customers["customer_id"].isin(small_tables["churn_records"]["customer_id"]),
        "customer_id",
    ]
    counts = payments[payments["customer_id"].isin(stayers)].groupby("customer_id").size()
    assert (counts == 12).all()


def test_same_parameters_give_identical_tables(small_parameters: dict[str, Any]) -> None:
    first, second = simulate(small_parameters), simulate(small_parameters)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)


def test_another_seed_gives_other_tables(small_parameters: dict[str, Any]) -> None:
    first = simulate(small_parameters)
    second = simulate(merge_parameters(small_parameters, {"seed": small_parameters["seed"] + 1}))
    assert not first["events"].equals(second["events"])
    assert not first["customers"]["age"].equals(second["customers"]["age"])


def test_volume_multiplier_scales_sessions_and_keeps_the_business(
    small_tables: dict[str, pd.DataFrame],
    simulate_small: Callable[..., dict[str, pd.DataFrame]],
) -> None:
    bigger = simulate_small(events={"volume_multiplier": 3.0})
    counts = small_tables["events"]["event_type"].value_counts()
    bigger_counts = bigger["events"]["event_type"].value_counts()
    assert bigger_counts["session"] / counts["session"] == pytest.approx(3.0, rel=0.05)
    for other in ("support_ticket", "payment", "late_payment", "online_purchase"):
        assert bigger_counts[other] == counts[other], other
    pd.testing.assert_frame_equal(bigger["customers"], small_tables["customers"])
    pd.testing.assert_frame_equal(bigger["churn_records"], small_tables["churn_records"])


def test_ground_truth_matches_the_churn_records(small_tables: dict[str, pd.DataFrame]) -> None:
    truth, churn = small_tables["simulation_ground_truth"], small_tables["churn_records"]
    assert truth["hazard"].between(0, 1).all()
    churned = truth[truth["churned"] == 1]
    assert churned["customer_id"].is_unique
    merged = churned.merge(churn, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    same_month = merged["churn_date"].dt.to_period("M") == merged["snapshot_date"].dt.to_period("M")
    assert same_month.all()
    # Churn draws follow the hazard: observed and expected counts agree.
    assert truth["churned"].sum() == pytest.approx(truth["hazard"].sum(), rel=0.15)


def test_default_size_matches_the_brief(base_parameters: dict[str, Any]) -> None:
    tables = simulate(base_parameters)
    assert len(tables["customers"]) == 20_000
    assert 1_000_000 <= len(tables["events"]) <= 2_000_000
    monthly = tables["simulation_ground_truth"].groupby("snapshot_date")["churned"].mean()
    assert len(monthly) == 24
    assert monthly.between(0.02, 0.045).all(), monthly.round(4).to_dict()


def test_base_ages_are_mostly_twenty_to_forty(small_tables: dict[str, pd.DataFrame]) -> None:
    age = small_tables["customers"]["age"]
    assert age.between(18, 45).all()
    assert age.between(20, 40).mean() > 0.9


@pytest.fixture(scope="module")
def hazard_config(small_parameters: dict[str, Any]) -> Any:
    return validate_parameters(small_parameters)


def _logit(config: Any, **changes: Any) -> np.ndarray:
    """Hazard of a reference customer (or a column of them) with some inputs changed."""
    inputs: dict[str, Any] = {
        "contract": np.array(["month_to_month"], dtype=object),
        "tenure_months": np.array([12.0]),
        "recent_support_tickets": np.array([0.0]),
        "late_payments_3m": np.array([0.0]),
        "engagement_ratio": np.array([1.0]),
        "age": np.array([35.0]),
        "online_spend_3m": np.array([50.0]),
        "electronic_check": np.array([False]),
        "monthly_fee": np.array([60.0]),
        "paperless_billing": np.array([False]),
    }
    online_multiplier = changes.pop("online_spend_multiplier", 1.0)
    inputs.update({key: np.asarray(value) for key, value in changes.items()})
    return hazard_logit(config.hazard, **inputs, online_spend_multiplier=online_multiplier)


def test_hazard_directions(hazard_config: Any) -> None:
    tickets = np.arange(6.0)
    for contract in ("month_to_month", "one_year", "two_year"):
        logits = _logit(
            hazard_config, recent_support_tickets=tickets, contract=np.full(6, contract, object)
        )
        assert (np.diff(logits) > 0).all(), f"more tickets must raise the hazard on {contract}"
    assert (np.diff(_logit(hazard_config, late_payments_3m=np.arange(4.0))) > 0).all()
    assert (np.diff(_logit(hazard_config, tenure_months=np.array([1.0, 6, 24, 60]))) < 0).all()
    ratios = np.array([1.2, 1.0, 0.8, 0.6, 0.4, 0.2])
    assert (np.diff(_logit(hazard_config, engagement_ratio=ratios)) >= 0).all()
    assert (np.diff(_logit(hazard_config, online_spend_3m=np.array([0.0, 20, 100, 400]))) < 0).all()
    contracts = np.array(["month_to_month", "one_year", "two_year"], dtype=object)
    assert (np.diff(_logit(hazard_config, contract=contracts)) < 0).all()
    assert _logit(hazard_config, electronic_check=[True]) > _logit(hazard_config)


def test_hazard_non_linear_effects(hazard_config: Any) -> None:
    def ticket_slope(contract: str) -> float:
        logits = _logit(
            hazard_config,
            recent_support_tickets=[0.0, 1.0],
            contract=np.array([contract, contract], object),
        )
        return float(logits[1] - logits[0])

    assert ticket_slope("month_to_month") > 3 * ticket_slope("two_year")
    threshold = hazard_config.hazard.usage_threshold
    just_above, just_below = _logit(
        hazard_config, engagement_ratio=[threshold + 0.01, threshold - 0.01]
    )
    assert just_below - just_above > 1.0, "usage decline must have a threshold jump"


def test_online_spend_multiplier_reverses_the_effect(hazard_config: Any) -> None:
    spend = np.array([0.0, 400.0])
    normal = _logit(hazard_config, online_spend_3m=spend)
    flipped = _logit(hazard_config, online_spend_3m=spend, online_spend_multiplier=-1.0)
    assert normal[1] < normal[0]
    assert flipped[1] > flipped[0]


def test_hazard_of_an_unknown_contract_is_nan(hazard_config: Any) -> None:
    logit = _logit(hazard_config, contract=np.array(["lifetime"], dtype=object))
    assert np.isnan(logit).all()


def test_validate_parameters_node_raises_the_project_error(
    small_parameters: dict[str, Any],
) -> None:
    bad = merge_parameters(small_parameters, {"population": {"monthly_signups": -5}})
    with pytest.raises(SimulationParameterError, match=r"population\.monthly_signups = -5"):
        validate_parameters(bad)


def test_profiles_carry_latent_traits_with_mean_one(hazard_config: Any) -> None:
    profiles = simulate_customer_profiles(hazard_config)
    assert profiles["latent_engagement_baseline"].mean() == pytest.approx(1.0, rel=0.1)
    assert profiles["latent_ticket_propensity"].mean() == pytest.approx(1.0, rel=0.15)
    assert (profiles["latent_online_propensity"] == 0).mean() == pytest.approx(0.45, abs=0.05)
    raw = build_raw_customers(profiles, hazard_config)
    assert tuple(raw.columns) == CUSTOMER_COLUMNS
    assert "latent_engagement_baseline" in profiles.columns  # the profile itself is not mutated


def test_the_month_loop_shows_one_progress_bar(
    small_parameters: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from churn_mlops.pipelines.simulation.nodes import validate_parameters
    from churn_mlops.progress import PROGRESS_ENV

    config = validate_parameters(small_parameters)
    months = config.burn_in_months + config.n_months
    monkeypatch.setenv(PROGRESS_ENV, "1")
    simulate(small_parameters)
    err = capsys.readouterr().err
    assert err.count("simulation: 100%") == 1
    assert f"{months}/{months} [" in err and "month" in err

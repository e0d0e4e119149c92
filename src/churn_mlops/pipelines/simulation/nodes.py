"""Nodes of the ``simulation`` pipeline: a seeded, month-by-month subscription business.

The simulator draws a customer base (an initial stock plus monthly signups), lets each active
customer produce events month by month from latent traits (engagement that can decay, ticket,
late-payment and online-purchase propensities), and decides churn at each month end from the
documented ground-truth hazard (:func:`hazard_logit`, docs/simulation.md). Scenarios change
the population, the hazard or the delivered data from a chosen month on. All draws come from
``numpy`` Generators seeded from ``seed``, so the same parameters give identical tables.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from churn_mlops.pipelines.simulation.activity import hazard_logit, simulate_monthly_activity
from churn_mlops.pipelines.simulation.common import (
    _DAYS_PER_MONTH,
    _STREAM_CUSTOMERS,
    _STREAM_QUALITY_CUSTOMERS,
    _STREAM_QUALITY_EVENTS,
    _STREAM_SCENARIO_CUSTOMERS,
    CHURN_RECORD_COLUMNS,
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    _rng,
)
from churn_mlops.pipelines.simulation.params import (
    SimulationParameters,
    validate_simulation_parameters,
)

__all__ = [
    "CHURN_RECORD_COLUMNS",
    "CUSTOMER_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "build_raw_customers",
    "build_raw_events",
    "hazard_logit",
    "scenario_start_timestamp",
    "simulate",
    "simulate_customer_profiles",
    "simulate_monthly_activity",
    "validate_parameters",
]

logger = logging.getLogger(__name__)


def scenario_start_timestamp(config: SimulationParameters) -> pd.Timestamp:
    """Midnight at the start of the month where the configured scenario begins."""
    start = np.datetime64(config.start_date, "M") + config.scenario_start_index
    return pd.Timestamp(start.astype("datetime64[ns]"))


def validate_parameters(parameters: Mapping[str, Any]) -> SimulationParameters:
    """Validate the ``simulation`` parameters once, where they enter the pipeline.

    Args:
        parameters: The ``simulation`` block of ``parameters_simulation.yml``.

    Returns:
        The validated, immutable parameters used by every other node.

    Raises:
        SimulationParameterError: Naming each bad key, its value and what was expected.
    """
    config = validate_simulation_parameters(parameters)
    logger.info(
        "Simulating %d months from %s, scenario %r from month %d, seed %d",
        config.n_months,
        config.start_date,
        config.scenario.name,
        config.scenario_start_index,
        config.seed,
    )
    return config


def _choice(rng: np.random.Generator, shares: Any, size: int) -> np.ndarray:
    categories = np.array(shares.categories(), dtype=object)
    return categories[rng.choice(len(categories), size=size, p=shares.probabilities())]


def simulate_customer_profiles(config: SimulationParameters) -> pd.DataFrame:
    """Draw every customer of the period with their attributes and latent traits.

    The initial stock signs up uniformly within ``initial_max_tenure_months`` before
    ``start_date``; ``monthly_signups`` customers sign up on uniform days of each simulated
    month. Ids are 1.. in signup order. Under ``age_shift`` customers signing up from the
    scenario's start month get ages drawn uniformly in ``[min_age, max_age]``.

    Args:
        config: Validated simulation parameters.

    Returns:
        One row per customer: the raw ``customers`` columns plus ``signup_month_index``
        (months from ``start_date``, negative for the initial stock) and the latent traits
        ``latent_engagement_baseline``, ``latent_online_propensity``,
        ``latent_ticket_propensity`` and ``latent_late_propensity``.
    """
    rng = _rng(config.seed, _STREAM_CUSTOMERS)
    pop = config.population
    behaviour = config.behaviour

    start_day = np.datetime64(config.start_date, "D")
    max_days = max(1, int(round(pop.initial_max_tenure_months * _DAYS_PER_MONTH)))
    initial = start_day - rng.integers(1, max_days + 1, size=pop.initial_customers)
    month_starts = np.datetime64(config.start_date, "M") + np.arange(config.n_months + 1)
    month_days = np.diff(month_starts.astype("datetime64[D]")).astype(np.int64)
    signup_month = np.repeat(np.arange(config.n_months), pop.monthly_signups)
    offsets = np.floor(rng.random(signup_month.size) * month_days[signup_month]).astype(np.int64)
    new = month_starts[signup_month].astype("datetime64[D]") + offsets
    signup = np.sort(np.concatenate([initial, new]))
    n = signup.size

    age = np.clip(np.rint(rng.normal(pop.age.mean, pop.age.std, n)), pop.age.min, pop.age.max)
    plan = _choice(rng, pop.plans, n)
    plan_fee = np.array([getattr(pop.plan_fees, name) for name in pop.plans.categories()])
    plan_code = pd.Categorical(plan, categories=pop.plans.categories()).codes
    fee = plan_fee[plan_code] * (1.0 + rng.normal(0.0, pop.fee_noise_std, n))
    log_sd = behaviour.engagement_baseline_std
    online_sd = behaviour.online_propensity_std
    ticket_shape = behaviour.ticket_propensity_shape
    late_shape = behaviour.late_propensity_shape
    profiles = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "signup_date": signup.astype("datetime64[ns]"),
            "age": age.astype(np.int64),
            "region": _choice(rng, pop.regions, n),
            "plan": plan,
            "contract": _choice(rng, pop.contracts, n),
            "payment_method": _choice(rng, pop.payment_methods, n),
            "paperless_billing": rng.random(n) < pop.paperless_billing_share,
            "monthly_fee": np.round(np.clip(fee, 0.0, 1000.0), 2),
            "signup_month_index": (
                signup.astype("datetime64[M]") - np.datetime64(config.start_date, "M")
            ).astype(np.int64),
            # Log-normal traits are normalised to mean 1 so rates read as "per average customer".
            "latent_engagement_baseline": np.exp(rng.normal(-(log_sd**2) / 2, log_sd, n)),
            "latent_online_propensity": np.where(
                rng.random(n) < behaviour.online_buyer_share,
                np.exp(rng.normal(-(online_sd**2) / 2, online_sd, n)),
                0.0,
            ),
            "latent_ticket_propensity": rng.gamma(ticket_shape, 1.0 / ticket_shape, n),
            "latent_late_propensity": rng.gamma(late_shape, 1.0 / late_shape, n),
        }
    )
    if config.scenario.name == "age_shift":
        shift = config.scenario.age_shift
        shifted = profiles["signup_month_index"].to_numpy() >= config.scenario_start_index
        scenario_rng = _rng(config.seed, _STREAM_SCENARIO_CUSTOMERS)
        ages = profiles["age"].to_numpy().copy()
        ages[shifted] = scenario_rng.integers(
            shift.min_age, shift.max_age + 1, size=int(shifted.sum())
        )
        profiles = profiles.assign(age=ages)
    logger.info(
        "Simulated %d customers (%d initial, %d new signups)", n, pop.initial_customers, new.size
    )
    return profiles


def _corrupt(
    values: np.ndarray, candidates: np.ndarray, config: SimulationParameters, stream: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pick null and out-of-range rows among ``candidates``; return (values, null mask)."""
    quality = config.scenario.data_quality
    rng = _rng(config.seed, stream)
    rows = np.flatnonzero(candidates)
    draw = rng.random(rows.size)
    nulls = rows[draw < quality.null_rate]
    out_of_range = rows[
        (draw >= quality.null_rate) & (draw < quality.null_rate + quality.out_of_range_rate)
    ]
    corrupted = values.astype(np.float64).copy()
    corrupted[out_of_range] = rng.uniform(
        quality.out_of_range_min, quality.out_of_range_max, out_of_range.size
    )
    null_mask = np.zeros(values.size, dtype=bool)
    null_mask[nulls] = True
    corrupted[null_mask] = np.nan
    logger.info(
        "data_quality scenario: %d nulls and %d out-of-range values in %s",
        nulls.size,
        out_of_range.size,
        quality.column,
    )
    return corrupted, null_mask


def build_raw_customers(
    customer_profiles: pd.DataFrame, config: SimulationParameters
) -> pd.DataFrame:
    """Project the profiles onto the raw ``customers`` contract (docs/data_model.md).

    Under ``data_quality`` with a ``customers.*`` column, customers signing up from the
    scenario's start month get nulls and out-of-range values in that column (``age`` then
    becomes the nullable ``Int64`` type).

    Args:
        customer_profiles: Output of :func:`simulate_customer_profiles`.
        config: Validated simulation parameters.

    Returns:
        The ``customers`` table, one row per customer.
    """
    customers = customer_profiles.loc[:, list(CUSTOMER_COLUMNS)].reset_index(drop=True)
    quality = config.scenario.data_quality
    if config.scenario.name != "data_quality" or not quality.column.startswith("customers."):
        return customers
    column = quality.column.split(".", 1)[1]
    candidates = (customers["signup_date"] >= scenario_start_timestamp(config)).to_numpy()
    values, nulls = _corrupt(
        customers[column].to_numpy(), candidates, config, _STREAM_QUALITY_CUSTOMERS
    )
    if column == "age":
        ages = pd.array(np.rint(np.nan_to_num(values)).astype(np.int64), dtype="Int64")
        ages[nulls] = pd.NA
        return customers.assign(age=ages)
    return customers.assign(**{column: values})


def build_raw_events(events: pd.DataFrame, config: SimulationParameters) -> pd.DataFrame:
    """Deliver the simulated events as the raw ``events`` table, applying data scenarios.

    ``feature_change`` multiplies ``amount`` by ``amount_multiplier`` (cents) for events from
    the start month; ``data_quality`` with an ``events.*`` column puts nulls and out-of-range
    values into that column's non-null values from the start month.

    Args:
        events: The true events from :func:`simulate_monthly_activity`.
        config: Validated simulation parameters.

    Returns:
        The ``events`` table.
    """
    name = config.scenario.name
    quality = config.scenario.data_quality
    if name == "feature_change":
        after = (events["event_time"] >= scenario_start_timestamp(config)).to_numpy()
        amount = events["amount"].to_numpy().copy()
        amount[after] *= config.scenario.feature_change.amount_multiplier
        return events.assign(amount=amount)
    if name == "data_quality" and quality.column.startswith("events."):
        column = quality.column.split(".", 1)[1]
        values = events[column].to_numpy()
        after = (events["event_time"] >= scenario_start_timestamp(config)).to_numpy()
        corrupted, _ = _corrupt(values, after & ~np.isnan(values), config, _STREAM_QUALITY_EVENTS)
        return events.assign(**{column: corrupted})
    return events


def simulate(parameters: Mapping[str, Any] | SimulationParameters) -> dict[str, pd.DataFrame]:
    """Simulate a period and scenario without Kedro: the whole pipeline as one call.

    Args:
        parameters: The ``simulation`` parameters (a mapping as in
            ``parameters_simulation.yml``, e.g. built with ``merge_parameters``) or a
            validated :class:`SimulationParameters`.

    Returns:
        ``customers``, ``events`` and ``churn_records`` (the raw tables) and
        ``simulation_ground_truth``.

    Raises:
        SimulationParameterError: If the parameters are invalid.
    """
    config = validate_parameters(parameters)
    profiles = simulate_customer_profiles(config)
    events, churn_records, ground_truth = simulate_monthly_activity(profiles, config)
    return {
        "customers": build_raw_customers(profiles, config),
        "events": build_raw_events(events, config),
        "churn_records": churn_records,
        "simulation_ground_truth": ground_truth,
    }

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

from churn_mlops.pipelines.simulation.parameters import (
    HazardParameters,
    SimulationParameters,
    validate_simulation_parameters,
)

logger = logging.getLogger(__name__)

EVENT_TYPES = ("session", "support_ticket", "payment", "late_payment", "online_purchase")
_SESSION, _TICKET, _PAYMENT, _LATE_PAYMENT, _ONLINE_PURCHASE = range(len(EVENT_TYPES))

CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_date",
    "age",
    "region",
    "plan",
    "contract",
    "payment_method",
    "paperless_billing",
    "monthly_fee",
)
EVENT_COLUMNS = ("customer_id", "event_time", "event_type", "amount", "duration_minutes")
CHURN_RECORD_COLUMNS = ("customer_id", "churn_date")

_NS_PER_SECOND = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_SECOND
_DAYS_PER_MONTH = 365.25 / 12
_NEVER = np.iinfo(np.int64).max

# Independent random streams per concern: changing the session volume, say, leaves customers,
# engagement, tickets, payments and churn untouched, and a scenario that only corrupts the
# delivered data leaves the simulated business identical to the baseline.
_STREAM_CUSTOMERS = 0
_STREAM_DYNAMICS = 1
_STREAM_SESSIONS = 2
_STREAM_SCENARIO_CUSTOMERS = 3
_STREAM_QUALITY_CUSTOMERS = 4
_STREAM_QUALITY_EVENTS = 5


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


def _month_bounds_ns(config: SimulationParameters, first: int, last: int) -> np.ndarray:
    """Start of months ``first .. last`` (indices relative to ``start_date``) in epoch ns."""
    start = np.datetime64(config.start_date, "M")
    months = start + np.arange(first, last + 1)
    return months.astype("datetime64[ns]").astype(np.int64)


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


def hazard_logit(
    hazard: HazardParameters,
    *,
    contract: np.ndarray,
    tenure_months: np.ndarray,
    recent_support_tickets: np.ndarray,
    late_payments_3m: np.ndarray,
    engagement_ratio: np.ndarray,
    age: np.ndarray,
    online_spend_3m: np.ndarray,
    electronic_check: np.ndarray,
    monthly_fee: np.ndarray,
    paperless_billing: np.ndarray,
    online_spend_multiplier: float = 1.0,
) -> np.ndarray:
    """The ground-truth churn hazard on the logit scale (docs/simulation.md, vectorised).

    ``sigmoid(hazard_logit(...))`` is the probability that a customer active at the end of a
    month churns during the next month.

    Args:
        hazard: The hazard coefficients.
        contract: Contract names per customer.
        tenure_months: Months from signup to the end of the month.
        recent_support_tickets: Tickets this month plus ``previous_month_ticket_weight`` times
            last month's.
        late_payments_3m: Late payments in this and the two previous months.
        engagement_ratio: Latent engagement divided by the customer's own baseline.
        age: Age at signup.
        online_spend_3m: Online purchase amount in this and the two previous months.
        electronic_check: Whether the customer pays by electronic check.
        monthly_fee: List price per month.
        paperless_billing: E-billing opt-in.
        online_spend_multiplier: Multiplies the online-spend coefficient (``-1`` under
            ``online_spend_flip`` from its start month).

    Returns:
        The log-odds of churning next month, one per customer.
    """
    contract_shift = np.select(
        [contract == name for name in ("month_to_month", "one_year", "two_year")],
        [hazard.contract.month_to_month, hazard.contract.one_year, hazard.contract.two_year],
        default=np.nan,
    )
    month_to_month = contract == "month_to_month"
    ticket_effect = hazard.support_tickets + hazard.support_tickets_month_to_month * month_to_month
    return (
        hazard.intercept
        + contract_shift
        + hazard.log_tenure_months * np.log1p(tenure_months)
        + ticket_effect * recent_support_tickets
        + hazard.late_payments_3m * late_payments_3m
        + hazard.usage_decline * np.maximum(0.0, 1.0 - engagement_ratio)
        + hazard.usage_below_threshold * (engagement_ratio < hazard.usage_threshold)
        + hazard.age_per_decade * (age - hazard.age_center) / 10.0
        + hazard.online_spend
        * online_spend_multiplier
        * (np.log1p(online_spend_3m) - hazard.online_spend_center)
        + hazard.electronic_check * electronic_check
        + hazard.monthly_fee_per_30 * (monthly_fee - hazard.monthly_fee_center) / 30.0
        + hazard.paperless_billing * paperless_billing
    )


def _uniform_times(
    rng: np.random.Generator, start: np.ndarray, end: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions repeated ``counts`` times and uniform whole-second times in [start, end)."""
    positions = np.repeat(np.arange(counts.size), counts)
    lo = start[positions]
    span = end[positions] - lo
    times = lo + (rng.random(positions.size) * span).astype(np.int64)
    times -= (times - lo) % _NS_PER_SECOND  # whole seconds, still >= start
    return positions, times


_EventPart = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _event_part(
    customer: np.ndarray,
    time: np.ndarray,
    event_type: int,
    *,
    amount: np.ndarray | None = None,
    duration: np.ndarray | None = None,
) -> _EventPart:
    """Columns (customer position, time, type code, amount, duration) of one event type."""
    nan = np.full(customer.size, np.nan)
    return (
        customer.astype(np.int64),
        time,
        np.full(customer.size, event_type, dtype=np.int8),
        nan if amount is None else amount,
        nan if duration is None else duration,
    )


def _concat_parts(parts: list[_EventPart]) -> _EventPart:
    """One part from several; a month's events ordered by time, then customer, then type."""
    customer, time, code, amount, duration = (
        np.concatenate(col) for col in zip(*parts, strict=True)
    )
    order = np.lexsort((code, customer, time))
    return customer[order], time[order], code[order], amount[order], duration[order]


def _events_frame(parts: list[_EventPart], customer_ids: np.ndarray) -> pd.DataFrame:
    """The raw ``events`` table from the monthly parts (already in time order)."""
    empty = [np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8)]
    customer, time, code, amount, duration = (
        [np.concatenate(col) for col in zip(*parts, strict=True)]
        if parts
        else [*empty, np.empty(0), np.empty(0)]
    )
    return pd.DataFrame(
        {
            "customer_id": customer_ids[customer],
            "event_time": time.view("datetime64[ns]"),
            "event_type": np.array(EVENT_TYPES, dtype=object)[code],
            "amount": amount,
            "duration_minutes": duration,
        }
    )


def simulate_monthly_activity(
    customer_profiles: pd.DataFrame, config: SimulationParameters
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate events and churn month by month for every active customer.

    Each month, vectorised over the active customers: engagement evolves (mean reversion to
    the customer's own baseline, or decay while disengaging); sessions, support tickets and
    online purchases are Poisson counts spread uniformly over the customer's active part of
    the month; one payment falls on the billing day (late with a per-customer probability).
    At the month end the ground-truth hazard decides who churns during the next month, on a
    uniform day; a churned customer produces no event on or after the churn date.
    ``burn_in_months`` before ``start_date`` warm up the histories and are not written.

    Args:
        customer_profiles: Output of :func:`simulate_customer_profiles`.
        config: Validated simulation parameters.

    Returns:
        ``events`` (true values, before any data scenario), ``churn_records`` and
        ``simulation_ground_truth``: one row per customer at risk at each month start in the
        period, with the hazard that drove the draw and its inputs.
    """
    dynamics = _rng(config.seed, _STREAM_DYNAMICS)
    sessions_rng = _rng(config.seed, _STREAM_SESSIONS)
    behaviour, rates, hazard = config.behaviour, config.events, config.hazard
    scenario = config.scenario
    burn_in = config.burn_in_months
    bounds = _month_bounds_ns(config, -burn_in, config.n_months + 1)

    n = len(customer_profiles)
    ids = customer_profiles["customer_id"].to_numpy(np.int64)
    signup_ns = customer_profiles["signup_date"].to_numpy("datetime64[ns]").view(np.int64)
    billing_day = customer_profiles["signup_date"].dt.day.to_numpy(np.int64)
    fee = customer_profiles["monthly_fee"].to_numpy(np.float64)
    contract = customer_profiles["contract"].to_numpy(object)
    baseline = customer_profiles["latent_engagement_baseline"].to_numpy(np.float64)
    online_prop = customer_profiles["latent_online_propensity"].to_numpy(np.float64)
    ticket_prop = customer_profiles["latent_ticket_propensity"].to_numpy(np.float64)
    late_base = customer_profiles["payment_method"].map(rates.late_payment_probability.model_dump())
    late_prob = np.clip(
        late_base.to_numpy(np.float64)
        * customer_profiles["latent_late_propensity"].to_numpy(np.float64),
        0.0,
        1.0,
    )
    static = {
        "contract": contract,
        "age": customer_profiles["age"].to_numpy(np.float64),
        "electronic_check": (customer_profiles["payment_method"] == "electronic_check").to_numpy(),
        "monthly_fee": fee,
        "paperless_billing": customer_profiles["paperless_billing"].to_numpy(bool),
    }

    churn_ns = np.full(n, _NEVER, dtype=np.int64)
    log_ratio = np.zeros(n)
    disengaging = np.zeros(n, dtype=bool)
    tickets = np.zeros((2, n))  # this month, previous month
    late = np.zeros((3, n))  # this month and the two before
    spend = np.zeros((3, n))

    monthly_events: list[_EventPart] = []
    truth: list[pd.DataFrame] = []
    for k in range(-burn_in, config.n_months):
        month_start, month_end = bounds[k + burn_in], bounds[k + burn_in + 1]
        month_len = month_end - month_start
        idx = np.flatnonzero((signup_ns < month_end) & (churn_ns > month_start))
        m = idx.size
        window_start = np.maximum(month_start, signup_ns[idx])
        window_end = np.minimum(month_end, churn_ns[idx])
        share = (window_end - window_start) / month_len

        # Engagement: log(engagement / own baseline) reverts to 0, or decays while disengaging.
        was = disengaging[idx]
        starts = ~was & (dynamics.random(m) < behaviour.disengage_probability)
        recovers = was & (dynamics.random(m) < behaviour.recover_probability)
        now = (was | starts) & ~recovers
        drift = np.where(
            now,
            log_ratio[idx] + np.log(behaviour.disengage_decay),
            behaviour.engagement_mean_reversion * log_ratio[idx],
        )
        log_ratio[idx] = drift + dynamics.normal(0.0, behaviour.engagement_noise_std, m)
        disengaging[idx] = now
        ratio = np.exp(log_ratio[idx])

        n_tickets = dynamics.poisson(rates.support_tickets_per_month * ticket_prop[idx] * share)
        n_online = dynamics.poisson(rates.online_purchases_per_month * online_prop[idx] * share)
        online_pos, online_time = _uniform_times(dynamics, window_start, window_end, n_online)
        online_amount = np.round(
            np.exp(
                dynamics.normal(
                    np.log(rates.online_amount_median), rates.online_amount_log_std, online_pos.size
                )
            ),
            2,
        )
        month_spend = np.bincount(online_pos, weights=online_amount, minlength=m)

        month_days = month_len // _NS_PER_DAY
        billing = month_start + (np.minimum(billing_day[idx], month_days) - 1) * _NS_PER_DAY
        billed = (billing >= window_start) & (billing < window_end)
        is_late = billed & (dynamics.random(m) < late_prob[idx])
        pay_end = np.where(is_late, window_end, np.minimum(window_end, billing + _NS_PER_DAY))
        pay_time = billing + (dynamics.random(m) * (pay_end - billing)).astype(np.int64)
        pay_time -= (pay_time - billing) % _NS_PER_SECOND

        n_sessions = sessions_rng.poisson(
            rates.volume_multiplier * rates.sessions_per_month * baseline[idx] * ratio * share
        )

        if k >= 0:
            session_pos, session_time = _uniform_times(
                sessions_rng, window_start, window_end, n_sessions
            )
            duration = np.exp(
                sessions_rng.normal(
                    np.log(rates.session_minutes_median)
                    + rates.session_minutes_engagement_elasticity * np.log(ratio[session_pos]),
                    rates.session_minutes_log_std,
                )
            )
            ticket_pos, ticket_time = _uniform_times(dynamics, window_start, window_end, n_tickets)
            on_time = billed & ~is_late
            monthly_events.append(
                _concat_parts(
                    [
                        _event_part(
                            idx[session_pos], session_time, _SESSION, duration=np.round(duration, 1)
                        ),
                        _event_part(idx[ticket_pos], ticket_time, _TICKET),
                        _event_part(
                            idx[on_time], pay_time[on_time], _PAYMENT, amount=fee[idx[on_time]]
                        ),
                        _event_part(
                            idx[is_late], pay_time[is_late], _LATE_PAYMENT, amount=fee[idx[is_late]]
                        ),
                        _event_part(
                            idx[online_pos], online_time, _ONLINE_PURCHASE, amount=online_amount
                        ),
                    ]
                )
            )

        tickets[1, idx] = tickets[0, idx]
        tickets[0, idx] = n_tickets
        late[1:, idx] = late[:-1, idx]
        late[0, idx] = is_late
        spend[1:, idx] = spend[:-1, idx]
        spend[0, idx] = month_spend

        next_month = k + 1
        if not 0 <= next_month < config.n_months:
            continue
        at_risk = churn_ns[idx] == _NEVER
        who = idx[at_risk]
        flipped = scenario.name == "online_spend_flip" and next_month >= config.scenario_start_index
        online_multiplier = scenario.online_spend_flip.effect_multiplier if flipped else 1.0
        inputs = {
            "tenure_months": (month_end - signup_ns[who]) / (_NS_PER_DAY * _DAYS_PER_MONTH),
            "recent_support_tickets": tickets[0, who]
            + hazard.previous_month_ticket_weight * tickets[1, who],
            "late_payments_3m": late[:, who].sum(axis=0),
            "engagement_ratio": ratio[at_risk],
            "online_spend_3m": spend[:, who].sum(axis=0),
        }
        logit = hazard_logit(
            hazard,
            **inputs,
            **{name: values[who] for name, values in static.items()},
            online_spend_multiplier=online_multiplier,
        )
        probability = 1.0 / (1.0 + np.exp(-logit))
        churns = dynamics.random(who.size) < probability
        next_start, next_end = bounds[next_month + burn_in], bounds[next_month + burn_in + 1]
        next_days = (next_end - next_start) // _NS_PER_DAY
        churn_day = np.floor(dynamics.random(int(churns.sum())) * next_days).astype(np.int64)
        churn_ns[who[churns]] = next_start + churn_day * _NS_PER_DAY
        truth.append(
            pd.DataFrame(
                {
                    "customer_id": ids[who],
                    "snapshot_date": np.full(who.size, next_start).view("datetime64[ns]"),
                    **inputs,
                    "disengaging": disengaging[who],
                    "hazard_logit": logit,
                    "hazard": probability,
                    "churned": churns.astype(np.int64),
                }
            )
        )

    churned = np.flatnonzero(churn_ns != _NEVER)
    churned = churned[np.argsort(churn_ns[churned], kind="stable")]
    churn_records = pd.DataFrame(
        {
            "customer_id": ids[churned],
            "churn_date": churn_ns[churned].view("datetime64[ns]"),
        }
    )
    event_table = _events_frame(monthly_events, ids)
    ground_truth = pd.concat(truth, ignore_index=True) if truth else pd.DataFrame()
    logger.info(
        "Simulated %d events, %d churned customers, mean monthly hazard %.4f",
        len(event_table),
        len(churn_records),
        float(ground_truth["hazard"].mean()) if len(ground_truth) else float("nan"),
    )
    return event_table, churn_records, ground_truth


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

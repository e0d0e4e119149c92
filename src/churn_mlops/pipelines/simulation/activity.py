"""Month-by-month activity of the simulated business: engagement, events and churn draws.

Each month, vectorised over the active customers: engagement evolves (mean reversion to the
customer's own baseline, or decay while disengaging); sessions, support tickets and online
purchases are Poisson counts spread uniformly over the customer's active part of the month;
one payment falls on the billing day (late with a per-customer probability). At the month end
the ground-truth hazard (:func:`hazard_logit`, docs/simulation.md) decides who churns during the
next month. The order of the random draws is part of the contract: the same seed gives the
same tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn_mlops.pipelines.simulation.common import (
    _DAYS_PER_MONTH,
    _LATE_PAYMENT,
    _NEVER,
    _NS_PER_DAY,
    _NS_PER_SECOND,
    _ONLINE_PURCHASE,
    _PAYMENT,
    _SESSION,
    _STREAM_DYNAMICS,
    _STREAM_SESSIONS,
    _TICKET,
    EVENT_TYPES,
    _month_bounds_ns,
    _rng,
)
from churn_mlops.pipelines.simulation.params import HazardParameters, SimulationParameters
from churn_mlops.progress import progress

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class _Customers:
    """Per-customer arrays that stay fixed for the whole simulation."""

    ids: np.ndarray
    signup_ns: np.ndarray
    billing_day: np.ndarray
    fee: np.ndarray
    baseline: np.ndarray
    online_prop: np.ndarray
    ticket_prop: np.ndarray
    late_prob: np.ndarray
    static: dict[str, np.ndarray]  # the hazard's static inputs

    @classmethod
    def from_profiles(cls, profiles: pd.DataFrame, config: SimulationParameters) -> _Customers:
        rates = config.events
        late_base = profiles["payment_method"].map(rates.late_payment_probability.model_dump())
        late_prob = np.clip(
            late_base.to_numpy(np.float64)
            * profiles["latent_late_propensity"].to_numpy(np.float64),
            0.0,
            1.0,
        )
        fee = profiles["monthly_fee"].to_numpy(np.float64)
        return cls(
            ids=profiles["customer_id"].to_numpy(np.int64),
            signup_ns=profiles["signup_date"].to_numpy("datetime64[ns]").view(np.int64),
            billing_day=profiles["signup_date"].dt.day.to_numpy(np.int64),
            fee=fee,
            baseline=profiles["latent_engagement_baseline"].to_numpy(np.float64),
            online_prop=profiles["latent_online_propensity"].to_numpy(np.float64),
            ticket_prop=profiles["latent_ticket_propensity"].to_numpy(np.float64),
            late_prob=late_prob,
            static={
                "contract": profiles["contract"].to_numpy(object),
                "age": profiles["age"].to_numpy(np.float64),
                "electronic_check": (profiles["payment_method"] == "electronic_check").to_numpy(),
                "monthly_fee": fee,
                "paperless_billing": profiles["paperless_billing"].to_numpy(bool),
            },
        )


@dataclass
class _History:
    """What each customer carries from month to month (updated in place)."""

    churn_ns: np.ndarray
    log_ratio: np.ndarray
    disengaging: np.ndarray
    tickets: np.ndarray  # this month, previous month
    late: np.ndarray  # this month and the two before
    spend: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _History:
        return cls(
            churn_ns=np.full(n, _NEVER, dtype=np.int64),
            log_ratio=np.zeros(n),
            disengaging=np.zeros(n, dtype=bool),
            tickets=np.zeros((2, n)),
            late=np.zeros((3, n)),
            spend=np.zeros((3, n)),
        )


@dataclass(frozen=True)
class _Month:
    """One month's draws for the customers active in it (``idx``)."""

    idx: np.ndarray
    month_end: int
    window_start: np.ndarray
    window_end: np.ndarray
    ratio: np.ndarray
    n_tickets: np.ndarray
    online_pos: np.ndarray
    online_time: np.ndarray
    online_amount: np.ndarray
    month_spend: np.ndarray
    billed: np.ndarray
    is_late: np.ndarray
    pay_time: np.ndarray
    n_sessions: np.ndarray


def _evolve_engagement(
    dynamics: np.random.Generator, config: SimulationParameters, history: _History, idx: np.ndarray
) -> np.ndarray:
    """log(engagement / own baseline) reverts to 0, or decays while disengaging."""
    behaviour = config.behaviour
    m = idx.size
    was = history.disengaging[idx]
    starts = ~was & (dynamics.random(m) < behaviour.disengage_probability)
    recovers = was & (dynamics.random(m) < behaviour.recover_probability)
    now = (was | starts) & ~recovers
    drift = np.where(
        now,
        history.log_ratio[idx] + np.log(behaviour.disengage_decay),
        behaviour.engagement_mean_reversion * history.log_ratio[idx],
    )
    history.log_ratio[idx] = drift + dynamics.normal(0.0, behaviour.engagement_noise_std, m)
    history.disengaging[idx] = now
    return np.exp(history.log_ratio[idx])


def _draw_month(
    rngs: tuple[np.random.Generator, np.random.Generator],
    config: SimulationParameters,
    customers: _Customers,
    history: _History,
    month_start: int,
    month_end: int,
) -> _Month:
    """Engagement, ticket, purchase, payment and session draws of the active customers."""
    dynamics, sessions_rng = rngs
    rates = config.events
    month_len = month_end - month_start
    idx = np.flatnonzero((customers.signup_ns < month_end) & (history.churn_ns > month_start))
    m = idx.size
    window_start = np.maximum(month_start, customers.signup_ns[idx])
    window_end = np.minimum(month_end, history.churn_ns[idx])
    share = (window_end - window_start) / month_len
    ratio = _evolve_engagement(dynamics, config, history, idx)

    n_tickets = dynamics.poisson(
        rates.support_tickets_per_month * customers.ticket_prop[idx] * share
    )
    n_online = dynamics.poisson(
        rates.online_purchases_per_month * customers.online_prop[idx] * share
    )
    online_pos, online_time = _uniform_times(dynamics, window_start, window_end, n_online)
    online_amount = np.round(
        np.exp(
            dynamics.normal(
                np.log(rates.online_amount_median), rates.online_amount_log_std, online_pos.size
            )
        ),
        2,
    )
    month_days = month_len // _NS_PER_DAY
    billing = month_start + (np.minimum(customers.billing_day[idx], month_days) - 1) * _NS_PER_DAY
    billed = (billing >= window_start) & (billing < window_end)
    is_late = billed & (dynamics.random(m) < customers.late_prob[idx])
    pay_end = np.where(is_late, window_end, np.minimum(window_end, billing + _NS_PER_DAY))
    pay_time = billing + (dynamics.random(m) * (pay_end - billing)).astype(np.int64)
    pay_time -= (pay_time - billing) % _NS_PER_SECOND
    n_sessions = sessions_rng.poisson(
        rates.volume_multiplier * rates.sessions_per_month * customers.baseline[idx] * ratio * share
    )
    return _Month(
        idx=idx,
        month_end=month_end,
        window_start=window_start,
        window_end=window_end,
        ratio=ratio,
        n_tickets=n_tickets,
        online_pos=online_pos,
        online_time=online_time,
        online_amount=online_amount,
        month_spend=np.bincount(online_pos, weights=online_amount, minlength=m),
        billed=billed,
        is_late=is_late,
        pay_time=pay_time,
        n_sessions=n_sessions,
    )


def _month_events(
    rngs: tuple[np.random.Generator, np.random.Generator],
    config: SimulationParameters,
    customers: _Customers,
    month: _Month,
) -> _EventPart:
    """The written events of a month: sessions (with durations), tickets, payments, purchases."""
    dynamics, sessions_rng = rngs
    rates = config.events
    idx, fee = month.idx, customers.fee
    session_pos, session_time = _uniform_times(
        sessions_rng, month.window_start, month.window_end, month.n_sessions
    )
    duration = np.exp(
        sessions_rng.normal(
            np.log(rates.session_minutes_median)
            + rates.session_minutes_engagement_elasticity * np.log(month.ratio[session_pos]),
            rates.session_minutes_log_std,
        )
    )
    ticket_pos, ticket_time = _uniform_times(
        dynamics, month.window_start, month.window_end, month.n_tickets
    )
    on_time = month.billed & ~month.is_late
    late = month.is_late
    return _concat_parts(
        [
            _event_part(idx[session_pos], session_time, _SESSION, duration=np.round(duration, 1)),
            _event_part(idx[ticket_pos], ticket_time, _TICKET),
            _event_part(idx[on_time], month.pay_time[on_time], _PAYMENT, amount=fee[idx[on_time]]),
            _event_part(idx[late], month.pay_time[late], _LATE_PAYMENT, amount=fee[idx[late]]),
            _event_part(
                idx[month.online_pos],
                month.online_time,
                _ONLINE_PURCHASE,
                amount=month.online_amount,
            ),
        ]
    )


def _remember(history: _History, month: _Month) -> None:
    """Shift the rolling ticket, late-payment and spend histories by one month."""
    idx = month.idx
    history.tickets[1, idx] = history.tickets[0, idx]
    history.tickets[0, idx] = month.n_tickets
    history.late[1:, idx] = history.late[:-1, idx]
    history.late[0, idx] = month.is_late
    history.spend[1:, idx] = history.spend[:-1, idx]
    history.spend[0, idx] = month.month_spend


def _draw_churn(
    dynamics: np.random.Generator,
    config: SimulationParameters,
    customers: _Customers,
    history: _History,
    month: _Month,
    next_bounds: tuple[int, int],
    next_month: int,
) -> pd.DataFrame:
    """Who of the customers at risk churns during the next month, and the hazard behind it."""
    hazard, scenario = config.hazard, config.scenario
    at_risk = history.churn_ns[month.idx] == _NEVER
    who = month.idx[at_risk]
    flipped = scenario.name == "online_spend_flip" and next_month >= config.scenario_start_index
    online_multiplier = scenario.online_spend_flip.effect_multiplier if flipped else 1.0
    inputs = {
        "tenure_months": (month.month_end - customers.signup_ns[who])
        / (_NS_PER_DAY * _DAYS_PER_MONTH),
        "recent_support_tickets": history.tickets[0, who]
        + hazard.previous_month_ticket_weight * history.tickets[1, who],
        "late_payments_3m": history.late[:, who].sum(axis=0),
        "engagement_ratio": month.ratio[at_risk],
        "online_spend_3m": history.spend[:, who].sum(axis=0),
    }
    logit = hazard_logit(
        hazard,
        **inputs,
        **{name: values[who] for name, values in customers.static.items()},
        online_spend_multiplier=online_multiplier,
    )
    probability = 1.0 / (1.0 + np.exp(-logit))
    churns = dynamics.random(who.size) < probability
    next_start, next_end = next_bounds
    next_days = (next_end - next_start) // _NS_PER_DAY
    churn_day = np.floor(dynamics.random(int(churns.sum())) * next_days).astype(np.int64)
    history.churn_ns[who[churns]] = next_start + churn_day * _NS_PER_DAY
    return pd.DataFrame(
        {
            "customer_id": customers.ids[who],
            "snapshot_date": np.full(who.size, next_start).view("datetime64[ns]"),
            **inputs,
            "disengaging": history.disengaging[who],
            "hazard_logit": logit,
            "hazard": probability,
            "churned": churns.astype(np.int64),
        }
    )


def simulate_monthly_activity(
    customer_profiles: pd.DataFrame, config: SimulationParameters
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate events and churn month by month for every active customer.

    A churned customer produces no event on or after the churn date. ``burn_in_months``
    before ``start_date`` warm up the histories and are not written.

    Args:
        customer_profiles: Output of :func:`simulate_customer_profiles`.
        config: Validated simulation parameters.

    Returns:
        ``events`` (true values, before any data scenario), ``churn_records`` and
        ``simulation_ground_truth``: one row per customer at risk at each month start in the
        period, with the hazard that drove the draw and its inputs.
    """
    rngs = (_rng(config.seed, _STREAM_DYNAMICS), _rng(config.seed, _STREAM_SESSIONS))
    burn_in = config.burn_in_months
    bounds = _month_bounds_ns(config, -burn_in, config.n_months + 1)
    customers = _Customers.from_profiles(customer_profiles, config)
    history = _History.empty(len(customer_profiles))
    monthly_events: list[_EventPart] = []
    truth: list[pd.DataFrame] = []
    with progress(burn_in + config.n_months, "simulation", "month") as bar:
        for k in range(-burn_in, config.n_months):
            start, end = bounds[k + burn_in], bounds[k + burn_in + 1]
            month = _draw_month(rngs, config, customers, history, start, end)
            if k >= 0:
                monthly_events.append(_month_events(rngs, config, customers, month))
            _remember(history, month)
            if 0 <= k + 1 < config.n_months:
                next_bounds = (bounds[k + 1 + burn_in], bounds[k + 2 + burn_in])
                truth.append(
                    _draw_churn(rngs[0], config, customers, history, month, next_bounds, k + 1)
                )
            bar.update(1)
    churned = np.flatnonzero(history.churn_ns != _NEVER)
    churned = churned[np.argsort(history.churn_ns[churned], kind="stable")]
    churn_records = pd.DataFrame(
        {
            "customer_id": customers.ids[churned],
            "churn_date": history.churn_ns[churned].view("datetime64[ns]"),
        }
    )
    event_table = _events_frame(monthly_events, customers.ids)
    ground_truth = pd.concat(truth, ignore_index=True) if truth else pd.DataFrame()
    logger.info(
        "Simulated %d events, %d churned customers, mean monthly hazard %.4f",
        len(event_table),
        len(churn_records),
        float(ground_truth["hazard"].mean()) if len(ground_truth) else float("nan"),
    )
    return event_table, churn_records, ground_truth

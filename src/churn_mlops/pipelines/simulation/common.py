"""Constants, random streams and calendar helpers shared by the simulation modules."""

from __future__ import annotations

import numpy as np

from churn_mlops.pipelines.simulation.params import SimulationParameters

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

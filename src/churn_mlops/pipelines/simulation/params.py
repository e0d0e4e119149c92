"""Validated parameters of the churn simulator (``conf/base/parameters_simulation.yml``).

Every value a user would tune lives in the YAML file; the models here only say what is
allowed. Fields have no defaults on purpose, so the YAML stays the single source of truth.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from churn_mlops.contracts.base import StrictModel as _Strict

SCENARIOS = ("baseline", "age_shift", "online_spend_flip", "data_quality", "feature_change")
DATA_QUALITY_COLUMNS = (
    "events.duration_minutes",
    "events.amount",
    "customers.age",
    "customers.monthly_fee",
)
_SHARE_TOLERANCE = 1e-6


class SimulationParameterError(ValueError):
    """Raised when ``simulation`` parameters are missing, unknown or out of range."""


class _Shares(_Strict):
    """Category shares that must sum to one (the field names are the categories)."""

    @model_validator(mode="after")
    def _sum_to_one(self) -> _Shares:
        total = sum(self.model_dump().values())
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            raise ValueError(f"shares must sum to 1, got {total:.6f} for {self.model_dump()}")
        return self

    def categories(self) -> list[str]:
        """Category names in declaration order."""
        return list(type(self).model_fields)

    def probabilities(self) -> list[float]:
        """Shares in the order of :meth:`categories`."""
        return [getattr(self, name) for name in self.categories()]


Share = Annotated[float, Field(ge=0.0, le=1.0)]


class RegionShares(_Shares):
    """Share of customers per billing region."""

    north: Share
    south: Share
    east: Share
    west: Share
    central: Share


class PlanShares(_Shares):
    """Share of customers per plan."""

    basic: Share
    standard: Share
    premium: Share


class PlanFees(_Strict):
    """List price per month of each plan (currency units)."""

    basic: float = Field(gt=0, le=1000)
    standard: float = Field(gt=0, le=1000)
    premium: float = Field(gt=0, le=1000)


class ContractShares(_Shares):
    """Share of customers per contract length."""

    month_to_month: Share
    one_year: Share
    two_year: Share


class PaymentMethodShares(_Shares):
    """Share of customers per payment method."""

    credit_card: Share
    bank_transfer: Share
    electronic_check: Share
    mailed_check: Share


class LatePaymentProbabilities(_Strict):
    """Probability that a monthly payment is late, per payment method (before propensity)."""

    credit_card: Share
    bank_transfer: Share
    electronic_check: Share
    mailed_check: Share


class AgeDistribution(_Strict):
    """Age at signup: a normal distribution rounded to whole years and clipped to [min, max]."""

    mean: float = Field(ge=18, le=100)
    std: float = Field(gt=0)
    min: int = Field(ge=18, le=100)
    max: int = Field(ge=18, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> AgeDistribution:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class PopulationParameters(_Strict):
    """Who the customers are and when they sign up."""

    initial_customers: int = Field(ge=0)
    monthly_signups: int = Field(ge=0)
    initial_max_tenure_months: int = Field(ge=1)
    age: AgeDistribution
    regions: RegionShares
    plans: PlanShares
    plan_fees: PlanFees
    fee_noise_std: float = Field(ge=0, le=1)
    contracts: ContractShares
    payment_methods: PaymentMethodShares
    paperless_billing_share: Share


class BehaviourParameters(_Strict):
    """Latent customer traits and how engagement evolves month to month."""

    engagement_baseline_std: float = Field(ge=0)
    engagement_noise_std: float = Field(ge=0)
    engagement_mean_reversion: float = Field(ge=0, le=1)
    disengage_probability: Share
    disengage_decay: float = Field(gt=0, le=1)
    recover_probability: Share
    online_buyer_share: Share
    online_propensity_std: float = Field(ge=0)
    ticket_propensity_shape: float = Field(gt=0)
    late_propensity_shape: float = Field(gt=0)


class EventParameters(_Strict):
    """Event rates and sizes; ``volume_multiplier`` scales session volume only."""

    volume_multiplier: float = Field(gt=0)
    sessions_per_month: float = Field(ge=0)
    session_minutes_median: float = Field(gt=0)
    session_minutes_log_std: float = Field(ge=0)
    session_minutes_engagement_elasticity: float
    support_tickets_per_month: float = Field(ge=0)
    online_purchases_per_month: float = Field(ge=0)
    online_amount_median: float = Field(gt=0)
    online_amount_log_std: float = Field(ge=0)
    late_payment_probability: LatePaymentProbabilities


class HazardContract(_Strict):
    """Log-odds shift of the monthly churn hazard per contract."""

    month_to_month: float
    one_year: float
    two_year: float


class HazardParameters(_Strict):
    """Coefficients of the ground-truth monthly churn hazard (see docs/simulation.md)."""

    intercept: float
    contract: HazardContract
    log_tenure_months: float
    support_tickets: float
    support_tickets_month_to_month: float
    previous_month_ticket_weight: float = Field(ge=0)
    late_payments_3m: float
    usage_decline: float
    usage_threshold: float = Field(gt=0, le=1)
    usage_below_threshold: float
    age_per_decade: float
    age_center: float
    online_spend: float
    online_spend_center: float
    electronic_check: float
    monthly_fee_per_30: float
    monthly_fee_center: float
    paperless_billing: float


class AgeShiftParameters(_Strict):
    """``age_shift``: new signups from the start month are aged uniformly in [min, max]."""

    min_age: int = Field(ge=18, le=100)
    max_age: int = Field(ge=18, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> AgeShiftParameters:
        if self.min_age > self.max_age:
            raise ValueError(f"min_age ({self.min_age}) must not exceed max_age ({self.max_age})")
        return self


class OnlineSpendFlipParameters(_Strict):
    """``online_spend_flip``: the online-spend coefficient is multiplied by this from the start."""

    effect_multiplier: float


class DataQualityParameters(_Strict):
    """``data_quality``: nulls and out-of-range values in one column from the start month."""

    column: Literal[DATA_QUALITY_COLUMNS]  # type: ignore[valid-type]
    null_rate: Share
    out_of_range_rate: Share
    out_of_range_min: float
    out_of_range_max: float

    @model_validator(mode="after")
    def _consistent(self) -> DataQualityParameters:
        if self.out_of_range_min > self.out_of_range_max:
            raise ValueError(
                f"out_of_range_min ({self.out_of_range_min}) must not exceed "
                f"out_of_range_max ({self.out_of_range_max})"
            )
        if self.null_rate + self.out_of_range_rate > 1:
            raise ValueError(
                f"null_rate + out_of_range_rate must be <= 1, got "
                f"{self.null_rate} + {self.out_of_range_rate}"
            )
        return self


class FeatureChangeParameters(_Strict):
    """``feature_change``: event amounts are multiplied by this from the start (cents = 100)."""

    amount_multiplier: float = Field(gt=0)


class ScenarioParameters(_Strict):
    """Which scenario runs, from which month, with each scenario's own knobs."""

    name: Literal[SCENARIOS]  # type: ignore[valid-type]
    start_month: int | dt.date = Field(
        description="0-based month index into the period, or a date inside the start month"
    )
    age_shift: AgeShiftParameters
    online_spend_flip: OnlineSpendFlipParameters
    data_quality: DataQualityParameters
    feature_change: FeatureChangeParameters


class SimulationParameters(_Strict):
    """All parameters of the ``simulation`` pipeline."""

    seed: int = Field(ge=0)
    start_date: dt.date
    n_months: int = Field(ge=1, le=600)
    burn_in_months: int = Field(ge=1, le=24)
    population: PopulationParameters
    behaviour: BehaviourParameters
    events: EventParameters
    hazard: HazardParameters
    scenario: ScenarioParameters

    @field_validator("start_date")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError(f"start_date must be the first day of a month, got {value}")
        return value

    @model_validator(mode="after")
    def _scenario_month_in_period(self) -> SimulationParameters:
        index = self.scenario_start_index
        if not 0 <= index < self.n_months:
            raise ValueError(
                f"scenario.start_month ({self.scenario.start_month!r}) resolves to month index "
                f"{index}, expected 0 <= index < n_months ({self.n_months})"
            )
        return self

    @property
    def scenario_start_index(self) -> int:
        """Month index (0-based from ``start_date``) where the scenario starts."""
        start = self.scenario.start_month
        if isinstance(start, dt.date):
            return (start.year - self.start_date.year) * 12 + start.month - self.start_date.month
        return start


# Pydantic adds the tried type to the location of a failed union member; drop it.
_UNION_MEMBER_TAGS = frozenset({"int", "date", "float", "str"})


def _format_location(loc: tuple[Any, ...]) -> str:
    parts = [
        str(part)
        for part in loc
        if str(part) not in _UNION_MEMBER_TAGS and not str(part).startswith("function-")
    ]
    return ".".join(["simulation", *parts])


def validate_simulation_parameters(
    parameters: Mapping[str, Any] | SimulationParameters,
) -> SimulationParameters:
    """Validate the ``simulation`` parameters and return them as an immutable model.

    Args:
        parameters: The ``simulation`` block of the parameters (a mapping), or an already
            validated model, which is returned unchanged.

    Returns:
        The validated parameters.

    Raises:
        SimulationParameterError: One message listing every bad key, with its value and what
            was expected, e.g. ``simulation.scenario.name = 'foo': Input should be ...``.
    """
    if isinstance(parameters, SimulationParameters):
        return parameters
    if not isinstance(parameters, Mapping):
        raise SimulationParameterError(
            f"simulation parameters must be a mapping, got {type(parameters).__name__}"
        )
    try:
        return SimulationParameters.model_validate(dict(parameters))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _format_location(error["loc"])
            if error["type"] == "missing":
                problems.append(f"{where}: required key is missing")
            else:
                problems.append(f"{where} = {error.get('input')!r}: {error['msg']}")
        # The same key can fail several union members (int | date); report it once.
        unique = list(dict.fromkeys(problems))
        raise SimulationParameterError(
            "Invalid simulation parameters (conf/base/parameters_simulation.yml):\n  - "
            + "\n  - ".join(unique)
        ) from None


def merge_parameters(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in recursively (neither input is modified).

    Useful to simulate another period or scenario from the configured parameters, e.g.
    ``merge_parameters(params, {"scenario": {"name": "age_shift", "start_month": 6}})``.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_parameters(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged

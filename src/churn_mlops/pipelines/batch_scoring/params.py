"""The ``batch_scoring`` parameters and the business values it reads from ``evaluation``."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BatchScoringConfig(BaseModel):
    """``batch_scoring`` parameters.

    Attributes:
        as_of: Score the customers active at this date (``YYYY-MM-DD``); ``None``: the latest
            snapshot of the spine.
        top_reasons: SHAP reasons kept per customer.
        reasons_for: ``worthwhile``: explain the customers whose offer has a positive expected
            net value (the ones a retention team calls; exact TreeSHAP costs far more than
            scoring); ``all``: every customer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: date | None = None
    top_reasons: int = Field(default=3, ge=1, le=10)
    reasons_for: Literal["worthwhile", "all"] = "worthwhile"


class BusinessValues(BaseModel):
    """``evaluation.business``: the same costs that set the model's decision threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retained_customer_value: float = Field(ge=0)
    offer_cost: float = Field(ge=0)
    offer_success_rate: float = Field(ge=0, le=1)

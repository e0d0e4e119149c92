"""The base of every validated parameter block: unknown keys are errors, objects are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base model: unknown keys are errors and validated objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

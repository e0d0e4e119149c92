"""The one formatter of pydantic errors: key path, message, and the value only when asked."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from churn_mlops.contracts.errors import format_validation_error


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: _Inner
    rows: list[int]


def _error(raw: dict) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        _Outer.model_validate(raw)
    return err.value


def test_paths_carry_the_prefix_and_list_indices():
    text = format_validation_error(
        _error({"inner": {"seed": "x"}, "rows": [1, "y"], "extra": 1}), prefix="training"
    )
    assert text.split("; ") == [
        "training.inner.seed: Input should be a valid integer, unable to parse string as an "
        "integer",
        "training.rows.1: Input should be a valid integer, unable to parse string as an integer",
        "training.extra: Extra inputs are not permitted",
    ]


def test_values_are_quoted_only_when_asked_and_never_for_missing_keys():
    error = _error({"inner": {"seed": "secret"}})
    assert "secret" not in format_validation_error(error)
    shown = format_validation_error(error, prefix="monitoring", show_input=True)
    assert "monitoring.inner.seed = 'secret': " in shown
    assert "monitoring.rows: Field required" in shown

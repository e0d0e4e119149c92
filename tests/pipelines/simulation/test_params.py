"""Tests of the simulation parameter models: the configured defaults and clear errors."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from churn_mlops.pipelines.simulation import (
    SimulationParameterError,
    merge_parameters,
    validate_simulation_parameters,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "simulation.md"


def test_configured_parameters_are_valid(base_parameters: dict[str, Any]) -> None:
    config = validate_simulation_parameters(base_parameters)
    assert config.start_date == dt.date(2023, 1, 1)
    assert config.n_months == 24
    assert config.population.initial_customers + 24 * config.population.monthly_signups == 20_000
    assert config.scenario.name == "baseline"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"scenario": {"name": "weather"}}, r"simulation\.scenario\.name = 'weather'"),
        ({"n_months": 0}, r"simulation\.n_months = 0: .*greater than or equal to 1"),
        ({"start_date": "2023-01-15"}, r"simulation\.start_date = '2023-01-15'.*first day"),
        ({"population": {"contracts": {"one_year": 0.5}}}, r"simulation\.population\.contracts"),
        ({"population": {"regions": {"mars": 0.0}}}, r"simulation\.population\.regions\.mars"),
        ({"events": {"volume_multiplier": -1}}, r"simulation\.events\.volume_multiplier = -1"),
        ({"scenario": {"start_month": 12}}, r"scenario\.start_month \(12\).*n_months \(12\)"),
        ({"scenario": {"start_month": "2022-06-01"}}, r"month index -7"),
        (
            {"scenario": {"data_quality": {"column": "events.event_type"}}},
            r"simulation\.scenario\.data_quality\.column = 'events\.event_type'",
        ),
        (
            {"scenario": {"data_quality": {"null_rate": 0.8, "out_of_range_rate": 0.5}}},
            r"null_rate \+ out_of_range_rate must be <= 1",
        ),
        (
            {"scenario": {"age_shift": {"min_age": 80, "max_age": 50}}},
            r"simulation\.scenario\.age_shift.*min_age \(80\) must not exceed max_age \(50\)",
        ),
        ({"hazard": {"intercep": -3.0}}, r"simulation\.hazard\.intercep = -3\.0: Extra inputs"),
    ],
)
def test_bad_parameters_name_the_key_and_the_value(
    small_parameters: dict[str, Any], overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SimulationParameterError, match=expected):
        validate_simulation_parameters(merge_parameters(small_parameters, overrides))


def test_missing_key_is_named(small_parameters: dict[str, Any]) -> None:
    parameters = merge_parameters(small_parameters, {})
    del parameters["hazard"]["late_payments_3m"]
    with pytest.raises(
        SimulationParameterError,
        match=r"simulation\.hazard\.late_payments_3m: required key is missing",
    ):
        validate_simulation_parameters(parameters)


def test_every_problem_is_listed_at_once(small_parameters: dict[str, Any]) -> None:
    parameters = merge_parameters(small_parameters, {"seed": -1, "n_months": 0})
    with pytest.raises(SimulationParameterError) as info:
        validate_simulation_parameters(parameters)
    assert "simulation.seed = -1" in str(info.value)
    assert "simulation.n_months = 0" in str(info.value)


def test_non_mapping_parameters_are_rejected() -> None:
    with pytest.raises(SimulationParameterError, match="must be a mapping, got list"):
        validate_simulation_parameters([1, 2])  # type: ignore[arg-type]


def test_scenario_start_accepts_a_date_inside_the_period(small_parameters: dict[str, Any]) -> None:
    config = validate_simulation_parameters(
        merge_parameters(small_parameters, {"scenario": {"start_month": "2023-04-17"}})
    )
    assert config.scenario_start_index == 3


def test_merge_parameters_leaves_its_inputs_alone(small_parameters: dict[str, Any]) -> None:
    before = repr(small_parameters)
    merged = merge_parameters(small_parameters, {"scenario": {"name": "age_shift"}})
    assert merged["scenario"]["name"] == "age_shift"
    assert merged["scenario"]["start_month"] == small_parameters["scenario"]["start_month"]
    assert repr(small_parameters) == before


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(f"{prefix}.{key}" if prefix else key, inner))
        return flat
    return {prefix: value}


def test_docs_state_every_hazard_coefficient_with_its_configured_value(
    base_parameters: dict[str, Any],
) -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `hazard\.([\w.]+)` \| `?(-?[\d.]+)`? \|", text, re.M))
    configured = _flatten("", base_parameters["hazard"])
    assert set(documented) == set(configured)
    for key, value in configured.items():
        assert float(documented[key]) == pytest.approx(float(value)), key

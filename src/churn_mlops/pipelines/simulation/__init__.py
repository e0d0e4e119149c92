"""The ``simulation`` pipeline: a seeded subscription business as the embedded default data."""

from __future__ import annotations

from churn_mlops.pipelines.simulation.nodes import simulate
from churn_mlops.pipelines.simulation.params import (
    SimulationParameterError,
    SimulationParameters,
    merge_parameters,
    validate_simulation_parameters,
)
from churn_mlops.pipelines.simulation.pipeline import create_pipeline

__all__ = [
    "SimulationParameterError",
    "SimulationParameters",
    "create_pipeline",
    "merge_parameters",
    "simulate",
    "validate_simulation_parameters",
]

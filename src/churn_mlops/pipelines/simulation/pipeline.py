"""Wiring of the ``simulation`` pipeline: parameters in, raw tables out (data/01_raw)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from churn_mlops.pipelines.simulation.nodes import (
    build_raw_customers,
    build_raw_events,
    simulate_customer_profiles,
    simulate_monthly_activity,
    validate_parameters,
)


def create_pipeline(**kwargs: object) -> Pipeline:
    """Create the ``simulation`` pipeline.

    Returns:
        A pipeline that writes ``customers``, ``events`` and ``churn_records`` (through their
        ``@pandas`` catalog entries) and the ``simulation_ground_truth`` reporting table.
    """
    return pipeline(
        [
            node(
                validate_parameters,
                inputs="params:simulation",
                outputs="simulation_config",
                name="validate_simulation_parameters",
            ),
            node(
                simulate_customer_profiles,
                inputs="simulation_config",
                outputs="customer_profiles",
                name="simulate_customer_profiles",
            ),
            node(
                simulate_monthly_activity,
                inputs=["customer_profiles", "simulation_config"],
                outputs=["simulated_events", "churn_records@pandas", "simulation_ground_truth"],
                name="simulate_monthly_activity",
            ),
            node(
                build_raw_customers,
                inputs=["customer_profiles", "simulation_config"],
                outputs="customers@pandas",
                name="build_raw_customers",
            ),
            node(
                build_raw_events,
                inputs=["simulated_events", "simulation_config"],
                outputs="events@pandas",
                name="build_raw_events",
            ),
        ]
    )

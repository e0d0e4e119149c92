"""Wiring of the feature_engineering pipeline: primary tables → ``model_input_table``."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from churn_mlops.pipelines.feature_engineering.nodes import (
    aggregate_event_windows,
    assemble_model_input,
    build_snapshot_calendar,
    build_snapshot_spine,
    check_model_input,
    validate_feature_parameters,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the feature_engineering pipeline.

    Returns:
        Nodes that validate the parameters, list the snapshot dates, build the active-customer
        spine with labels, aggregate events into point-in-time windows, assemble the features
        and check them against the declared feature list.
    """
    return pipeline(
        [
            node(
                validate_feature_parameters,
                inputs=["params:feature_engineering", "params:data_processing.input_mode"],
                outputs="feature_engineering_config",
                name="validate_feature_parameters",
            ),
            node(
                build_snapshot_calendar,
                inputs=["events_primary", "feature_engineering_config", "customers_primary"],
                outputs="snapshot_calendar",
                name="build_snapshot_calendar",
            ),
            node(
                build_snapshot_spine,
                inputs=[
                    "customers_primary",
                    "churn_records_primary",
                    "snapshot_calendar",
                    "feature_engineering_config",
                ],
                outputs="snapshot_spine",
                name="build_snapshot_spine",
            ),
            node(
                aggregate_event_windows,
                inputs=["events_primary", "snapshot_calendar", "feature_engineering_config"],
                outputs="event_window_aggregates",
                name="aggregate_event_windows",
            ),
            node(
                assemble_model_input,
                inputs=[
                    "snapshot_spine",
                    "customers_primary",
                    "event_window_aggregates",
                    "feature_engineering_config",
                ],
                outputs="unchecked_model_input",
                name="assemble_model_input",
            ),
            node(
                check_model_input,
                inputs=["unchecked_model_input", "feature_engineering_config"],
                outputs="model_input_table@ibis",
                name="check_model_input",
            ),
        ]
    )

"""Wiring of the data_processing pipeline (no logic here; see nodes.py)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.data_processing import nodes


def _prepare_and_validate() -> Pipeline:
    """Parse the parameters, prepare the raw tables and validate them."""
    return Pipeline(
        [
            Node(
                nodes.parse_data_processing_parameters,
                inputs="params:data_processing",
                outputs="data_processing_config",
                name="parse_data_processing_parameters",
            ),
            Node(
                nodes.prepare_customers,
                inputs=["customers@ibis", "data_processing_config"],
                outputs="customers_prepared",
                name="prepare_customers",
            ),
            Node(
                nodes.prepare_events,
                inputs=["events@ibis", "data_processing_config"],
                outputs="events_prepared",
                name="prepare_events",
            ),
            Node(
                nodes.prepare_churn_records,
                inputs=["churn_records@ibis", "data_processing_config"],
                outputs="churn_records_prepared",
                name="prepare_churn_records",
            ),
            Node(
                nodes.validate_raw_tables,
                inputs=[
                    "customers@ibis",
                    "events@ibis",
                    "churn_records@ibis",
                    "customers_prepared",
                    "events_prepared",
                    "churn_records_prepared",
                    "data_processing_config",
                ],
                outputs="validation_report",
                name="validate_raw_tables",
            ),
            Node(
                nodes.enforce_hard_rules,
                inputs="validation_report",
                outputs="validation_passed",
                name="enforce_hard_rules",
            ),
        ]
    )


def _clean() -> Pipeline:
    """Clean the validated tables and build the quarantine."""
    return Pipeline(
        [
            Node(
                nodes.clean_customers,
                inputs=["customers_prepared", "validation_passed", "data_processing_config"],
                outputs=["customers_primary", "customers_quarantined"],
                name="clean_customers",
            ),
            Node(
                nodes.clean_events,
                inputs=[
                    "events_prepared",
                    "customers_primary",
                    "validation_passed",
                    "data_processing_config",
                ],
                outputs=["events_primary", "events_quarantined"],
                name="clean_events",
            ),
            Node(
                nodes.clean_churn_records,
                inputs=[
                    "churn_records_prepared",
                    "customers_primary",
                    "events_primary",
                    "validation_passed",
                    "data_processing_config",
                ],
                outputs=["churn_records_primary", "churn_records_quarantined"],
                name="clean_churn_records",
            ),
            Node(
                nodes.build_quarantine,
                inputs=[
                    "customers_quarantined",
                    "events_quarantined",
                    "churn_records_quarantined",
                ],
                outputs="quarantine",
                name="build_quarantine",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    """Raw tables → prepared → validated (report, then the hard-rule gate) → primary + quarantine.

    Every cleaning node takes ``validation_passed`` as an input, so Kedro cannot run one, and
    so cannot save any primary table, before `enforce_hard_rules` has passed; the validation
    report is saved before the gate raises, so a failing run still leaves its full report.
    """
    return _prepare_and_validate() + _clean()

"""Wiring of the ``monitoring`` pipeline: champion + current window → drift, performance,
diagnosis, retraining decision, evidently report and MLflow metrics."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from churn_mlops.pipelines.monitoring.diagnosis import (
    check_data_quality,
    check_freshness,
    diagnose,
)
from churn_mlops.pipelines.monitoring.nodes import (
    assemble_monitoring_rows,
    build_evidently_report,
    build_monitoring_metrics,
    compute_drift,
    compute_performance,
    decide_retraining,
    validate_monitoring_parameters,
)
from churn_mlops.pipelines.monitoring.report import render_diagnosis_report


def _window_and_measures() -> Pipeline:
    """Validate the parameters, assemble the window, and measure drift and performance."""
    return pipeline(
        [
            node(
                validate_monitoring_parameters,
                inputs="params:monitoring",
                outputs="monitoring_config",
                name="validate_monitoring_parameters",
            ),
            node(
                assemble_monitoring_rows,
                inputs=[
                    "monitoring_champion",
                    "monitoring_model_input_table",
                    "monitoring_prediction_log",
                    "monitoring_feedback_log",
                    "monitoring_churn_records",
                    "monitoring_config",
                ],
                outputs=["monitoring_rows", "monitoring_window"],
                name="assemble_monitoring_rows",
            ),
            node(
                compute_drift,
                inputs=["monitoring_rows", "monitoring_champion", "monitoring_config"],
                outputs=["monitoring_drift_table", "monitoring_drift_summary"],
                name="compute_drift",
            ),
            node(
                compute_performance,
                inputs=[
                    "monitoring_rows",
                    "monitoring_champion",
                    "params:evaluation.business",
                    "monitoring_config",
                ],
                outputs=["monitoring_performance", "monitoring_performance_summary"],
                name="compute_performance",
            ),
        ]
    )


def _checks_and_decision() -> Pipeline:
    """Check data quality and freshness, diagnose, and decide on retraining."""
    return pipeline(
        [
            node(
                check_data_quality,
                inputs=[
                    "monitoring_rows",
                    "monitoring_champion",
                    "monitoring_window",
                    "monitoring_validation_report",
                    "monitoring_config",
                ],
                outputs="monitoring_data_quality",
                name="check_data_quality",
            ),
            node(
                check_freshness,
                inputs=[
                    "monitoring_window",
                    "monitoring_validation_report",
                    "monitoring_recent_runs",
                    "monitoring_clock",
                    "monitoring_config",
                ],
                outputs="monitoring_freshness",
                name="check_freshness",
            ),
            node(
                diagnose,
                inputs=[
                    "monitoring_drift_table",
                    "monitoring_drift_summary",
                    "monitoring_performance",
                    "monitoring_performance_summary",
                    "monitoring_data_quality",
                    "monitoring_freshness",
                    "monitoring_config",
                ],
                outputs="monitoring_diagnosis",
                name="diagnose",
            ),
            node(
                decide_retraining,
                inputs=[
                    "monitoring_diagnosis",
                    "monitoring_drift_summary",
                    "monitoring_performance_summary",
                    "monitoring_window",
                    "monitoring_champion",
                    "monitoring_clock",
                    "monitoring_config",
                ],
                outputs="retrain_decision",
                name="decide_retraining",
            ),
        ]
    )


def _reports() -> Pipeline:
    """Write the diagnosis report, the tracked metrics and the evidently report."""
    return pipeline(
        [
            node(
                render_diagnosis_report,
                inputs=[
                    "monitoring_diagnosis",
                    "retrain_decision",
                    "monitoring_drift_table",
                    "monitoring_performance",
                    "monitoring_data_quality",
                    "monitoring_window",
                ],
                outputs="monitoring_diagnosis_report",
                name="render_diagnosis_report",
            ),
            node(
                build_monitoring_metrics,
                inputs=[
                    "monitoring_drift_table",
                    "monitoring_drift_summary",
                    "monitoring_performance_summary",
                    "monitoring_window",
                ],
                outputs="monitoring_metrics",
                name="build_monitoring_metrics",
            ),
            node(
                build_evidently_report,
                inputs=["monitoring_rows", "monitoring_champion", "monitoring_config"],
                outputs="evidently_report",
                name="build_evidently_report",
            ),
        ]
    )


def create_pipeline(**kwargs: object) -> Pipeline:
    """Create the ``monitoring`` pipeline.

    Returns:
        Nodes that assemble the current window (feature table scored by the champion, or the
        serving prediction log with delayed labels), measure drift and performance, check
        data quality and freshness, diagnose, decide on retraining and write the reports.
    """
    return _window_and_measures() + _checks_and_decision() + _reports()

"""Wiring of the ``export`` pipeline (see ``nodes.py`` and ``docs/export.md``)."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from churn_mlops.pipelines.export import nodes


def create_pipeline(**kwargs: object) -> Pipeline:
    """Champion from the registry -> golden sample -> bundle (written and parity-gated on save)."""
    return Pipeline(
        [
            Node(
                nodes.select_golden_sample,
                inputs=[
                    "champion_release",
                    "test_split",
                    "test_predictions",
                    "params:training",
                    "params:export",
                ],
                outputs=["golden_sample", "golden_sample_summary"],
                name="select_golden_sample",
            ),
            Node(
                nodes.assemble_serving_bundle,
                inputs=[
                    "champion_release",
                    "golden_sample",
                    "golden_sample_summary",
                    "params:export",
                ],
                outputs="serving_bundle",
                name="assemble_serving_bundle",
            ),
        ]
    )

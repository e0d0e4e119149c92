"""Export pipeline wiring, its catalog entries and parameters file."""

from __future__ import annotations

from pathlib import Path

import yaml

from churn_mlops.pipelines.export import create_pipeline
from churn_mlops.pipelines.export.params import parse_export_params
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf" / "base"


def test_nodes_read_the_champion_and_write_the_bundle():
    pipeline = create_pipeline()
    nodes = {node.name: node for node in pipeline.nodes}
    assert set(nodes) == {"select_golden_sample", "assemble_serving_bundle"}
    assert nodes["select_golden_sample"].inputs == [
        "champion_release",
        "test_split",
        "test_predictions",
        "params:training",
        "params:export",
    ]
    assert nodes["assemble_serving_bundle"].outputs == ["serving_bundle"]
    assert pipeline.inputs() == {
        "champion_release",
        "test_split",
        "test_predictions",
        "params:training",
        "params:export",
    }
    assert pipeline.outputs() == {"serving_bundle"}


def test_catalog_entries_exist_with_a_layer():
    catalog = yaml.safe_load(Path(CONF / "catalog_export.yml").read_text())
    assert set(catalog) == {"champion_release", "serving_bundle"}
    for name, entry in catalog.items():
        assert entry["metadata"]["kedro-viz"]["layer"], name
    assert catalog["champion_release"]["type"].endswith("datasets.champion.MlflowChampionDataset")
    assert catalog["serving_bundle"]["type"].endswith("ServingBundleDataset")


def test_parameters_file_is_valid_and_pins_the_cpu_xgboost():
    raw = yaml.safe_load(Path(CONF / "parameters_export.yml").read_text())["export"]
    params = parse_export_params(raw)
    assert params.container.base_image == "python:3.11-slim"
    assert params.requirements.substitutions == {"xgboost": "xgboost-cpu"}
    assert params.golden_sample.tolerance == 1e-6


def test_export_is_registered_but_not_part_of_the_default_run():
    from kedro.framework.project import configure_project

    from churn_mlops.pipeline_registry import register_pipelines

    configure_project("churn_mlops")
    pipelines = register_pipelines()
    assert "export" in pipelines
    assert "assemble_serving_bundle" not in {n.name for n in pipelines["__default__"].nodes}

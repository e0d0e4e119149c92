"""The simulation pipeline runs on an in-memory catalog and through ``kedro run``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from churn_mlops.pipelines.simulation import SimulationParameterError, create_pipeline, simulate

OUTPUTS = ("customers@pandas", "events@pandas", "churn_records@pandas", "simulation_ground_truth")
CONF = Path(__file__).resolve().parents[3] / "conf" / "base"


def _run(parameters: dict[str, Any]) -> DataCatalog:
    catalog = DataCatalog(
        datasets={
            "params:simulation": MemoryDataset(parameters),
            **{name: MemoryDataset() for name in OUTPUTS},
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_pipeline_writes_the_raw_tables_like_the_helper(small_parameters: dict[str, Any]) -> None:
    catalog = _run(small_parameters)
    expected = simulate(small_parameters)
    for name in OUTPUTS:
        table = name.split("@")[0]
        pd.testing.assert_frame_equal(catalog.load(name), expected[table])


def test_pipeline_inputs_outputs_and_node_names() -> None:
    pipeline = create_pipeline()
    assert pipeline.inputs() == {"params:simulation"}
    assert pipeline.outputs() == set(OUTPUTS)
    names = [node.name for node in pipeline.nodes]
    assert len(names) == len(set(names))


def test_pipeline_stops_on_bad_parameters(small_parameters: dict[str, Any]) -> None:
    bad = dict(small_parameters, scenario=dict(small_parameters["scenario"], name="storm"))
    with pytest.raises(SimulationParameterError, match=r"simulation\.scenario\.name = 'storm'"):
        _run(bad)


def test_outputs_are_declared_in_the_catalog() -> None:
    declared: dict[str, Any] = {}
    for path in CONF.glob("catalog*.yml"):
        declared.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    for name in OUTPUTS:
        assert name in declared, name
        assert declared[name]["metadata"]["kedro-viz"]["layer"] in {"raw", "reporting"}


@pytest.mark.slow
def test_kedro_run_writes_parquet_tables(project_copy: Path, run_kedro: Callable[..., Any]) -> None:
    params = ",".join(
        [
            "simulation.n_months=6",
            "simulation.population.initial_customers=300",
            "simulation.population.monthly_signups=20",
            "simulation.scenario.start_month=3",
        ]
    )
    # Kedro checks that the copy has a source folder; the package itself is installed.
    (project_copy / "src").mkdir(exist_ok=True)
    run_kedro(project_copy, "run", "--pipeline", "simulation", "--params", params)
    raw = project_copy / "data" / "01_raw"
    customers = pd.read_parquet(raw / "customers.parquet")
    events = pd.read_parquet(raw / "events.parquet")
    churn = pd.read_parquet(raw / "churn_records.parquet")
    reporting = project_copy / "data" / "08_reporting"
    truth = pd.read_parquet(reporting / "simulation_ground_truth.parquet")
    assert len(customers) == 420
    assert events["customer_id"].isin(customers["customer_id"]).all()
    assert events["event_time"].max() < pd.Timestamp("2023-07-01")
    assert churn["customer_id"].isin(customers["customer_id"]).all()
    assert truth["snapshot_date"].nunique() == 6

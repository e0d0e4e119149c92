"""Pipeline tests of data_processing: an in-memory slice, and `kedro run` in a project copy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.ibis import FileDataset

from churn_mlops.pipelines.data_processing import create_pipeline
from churn_mlops.pipelines.data_processing.errors import DataValidationError
from tests.pipelines.data_processing.conftest import Frames, valid_frames, write_raw

PRIMARY = ("customers_primary", "events_primary", "churn_records_primary")


class KeptMemoryDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so a test can read intermediate outputs."""

    def _release(self) -> None:
        pass


def _catalog(frames: Frames, parameters: dict) -> DataCatalog:
    datasets = {
        f"{name}@ibis": MemoryDataset(ibis.memtable(frame)) for name, frame in frames.items()
    }
    datasets["params:data_processing"] = MemoryDataset(parameters)
    datasets.update({name: KeptMemoryDataset() for name in (*PRIMARY, "validation_report")})
    return DataCatalog(datasets)


def _break(frames: Frames) -> Frames:
    """The issue's example: wrong type, negative age, unknown contract, unknown customer."""
    frames["customers"]["monthly_fee"] = frames["customers"]["monthly_fee"].astype(str)
    frames["customers"].loc[1, "age"] = -3
    frames["customers"].loc[2, "contract"] = "weekly"
    frames["events"].loc[0, "customer_id"] = 777
    return frames


# --------------------------------------------------------------------------------------------
# In-memory slice
# --------------------------------------------------------------------------------------------


def test_pipeline_slice_writes_primary_tables_and_quarantine(frames: Frames, dp_parameters):
    frames["events"].loc[3, "duration_minutes"] = -2.0  # soft: quarantined
    catalog = _catalog(frames, dp_parameters)

    SequentialRunner().run(create_pipeline(), catalog)

    customers = catalog["customers_primary"].load().to_pandas()
    events = catalog["events_primary"].load().to_pandas()
    quarantine = catalog["quarantine"].load().to_pandas()
    report = catalog["validation_report"].load()
    assert sorted(customers["customer_id"]) == [1, 2, 3, 4, 5, 6]
    assert len(events) == 11
    assert quarantine[["table", "column", "rule", "value"]].values.tolist() == [
        ["events", "duration_minutes", "min", "-2.0"]
    ]
    assert report["passed"] is True
    assert report["tables"]["events"]["rows_quarantined"] == 1
    assert len(catalog["churn_records_primary"].load().to_pandas()) == 2


def test_pipeline_slice_stops_before_any_primary_output(frames: Frames, dp_parameters):
    catalog = _catalog(_break(frames), dp_parameters)

    with pytest.raises(DataValidationError) as info:
        SequentialRunner().run(create_pipeline(), catalog)

    assert {(f["table"], f["column"], f["rule"]) for f in info.value.failures} == {
        ("customers", "monthly_fee", "dtype"),
        ("customers", "age", "min"),
        ("customers", "contract", "categories"),
        ("events", "customer_id", "foreign_key"),
    }
    assert catalog["validation_report"].load()["passed"] is False
    for name in PRIMARY:
        assert not catalog.exists(name)
    assert "quarantine" not in catalog or not catalog.exists("quarantine")


def test_every_output_waits_for_the_gate():
    pipeline = create_pipeline()
    gated = pipeline.from_inputs("validation_passed")

    assert set(PRIMARY) | {"quarantine"} <= gated.all_outputs()
    ungated = pipeline.only_nodes_with_outputs("validation_report")
    assert ungated.all_outputs() & (set(PRIMARY) | {"quarantine"}) == set()


def test_raw_tables_from_a_database_by_catalog_only(tmp_path: Path, dp_parameters):
    # The docs' database recipe: the table engine points at a database file, and the raw
    # entries are ibis.TableDataset tables on that same connection.
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        for name, frame in valid_frames().items():
            connection.register("frame", frame)
            connection.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
    engine = {"backend": "duckdb", "database": str(database)}
    config = {
        f"{name}@ibis": {"type": "ibis.TableDataset", "table_name": name, "connection": engine}
        for name in ("customers", "events", "churn_records")
    }
    config.update(
        {
            name: {
                "type": "ibis.FileDataset",
                "filepath": str(tmp_path / f"{name}.parquet"),
                "table_name": name,
                "connection": engine,
            }
            for name in (*PRIMARY, "quarantine")
        }
    )
    catalog = DataCatalog.from_config(config)
    catalog["params:data_processing"] = dp_parameters

    SequentialRunner().run(create_pipeline(), catalog)

    assert len(pd.read_parquet(tmp_path / "events_primary.parquet")) == 12
    assert len(pd.read_parquet(tmp_path / "customers_primary.parquet")) == 6


# --------------------------------------------------------------------------------------------
# `kedro run` in a temporary copy of the project
# --------------------------------------------------------------------------------------------


def _latest_report(project: Path) -> dict:
    reports = sorted(
        (project / "data" / "08_reporting" / "validation_report.json").glob("*/*.json")
    )
    return json.loads(reports[-1].read_text())


def _fingerprint(paths: list[Path]) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def test_an_interrupted_write_leaves_the_previous_file(tmp_path: Path):
    # Primary tables are saved by the table engine; DuckDB writes to a temporary file and
    # renames it, so a write that fails halfway leaves the previous file as it was.
    target = FileDataset(filepath=str(tmp_path / "customers_primary.parquet"))
    target.save(ibis.memtable(valid_frames()["customers"]))
    before = _fingerprint([tmp_path / "customers_primary.parquet"])
    failing = ibis.memtable({"age": ["1"] * 50_000 + ["x"]}).mutate(age=ibis._.age.cast("int64"))

    with pytest.raises(DatasetError):
        target.save(failing)

    assert _fingerprint([tmp_path / "customers_primary.parquet"]) == before


@pytest.mark.slow
def test_kedro_run_fails_on_bad_raw_data_and_keeps_primary_and_feature_outputs(
    project_copy: Path, run_kedro: Callable
):
    pipelines = "data_processing,feature_engineering"
    write_raw(project_copy, valid_frames())
    run_kedro(project_copy, "run", "--pipelines", pipelines)
    outputs = [project_copy / "data" / "03_primary" / f"{name}.parquet" for name in PRIMARY]
    outputs.append(project_copy / "data" / "02_intermediate" / "quarantine.parquet")
    outputs.append(project_copy / "data" / "05_model_input" / "model_input_table.parquet")
    before = _fingerprint(outputs)
    assert len(pd.read_parquet(outputs[1])) == 12
    assert _latest_report(project_copy)["passed"] is True

    write_raw(project_copy, _break(valid_frames()))
    proc = run_kedro(project_copy, "run", "--pipelines", pipelines, check=False)

    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "DataValidationError" in output
    for named in (
        "customers.monthly_fee [dtype]",
        "customers.age [min]",
        "customers.contract [categories]",
        "events.customer_id [foreign_key]",
    ):
        assert named in output
    assert _fingerprint(outputs) == before
    report = _latest_report(project_copy)
    assert report["passed"] is False
    assert len(report["failures"]) == 4

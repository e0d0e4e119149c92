"""Pipeline tests of feature_engineering: wiring, an in-memory slice, the catalog, end to end."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.ibis import FileDataset
from kedro_datasets.pandas import ParquetDataset

from churn_mlops.pipelines.feature_engineering import create_pipeline
from churn_mlops.pipelines.feature_engineering.params import FeatureEngineeringConfig
from tests.pipelines.feature_engineering.conftest import (
    CHURN_SCHEMA,
    CUSTOMER_SCHEMA,
    EVENT_SCHEMA,
    PROJECT_ROOT,
    as_table,
    churn_frame,
    customers_frame,
    events_frame,
    feature_parameters,
)

PRIMARY_INPUTS = {"customers_primary", "events_primary", "churn_records_primary"}


def small_primary_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    customers = customers_frame(
        [
            {"customer_id": 1, "signup_date": "2022-06-01"},
            {"customer_id": 2, "signup_date": "2023-03-10", "contract": "one_year"},
            {"customer_id": 3, "signup_date": "2022-11-20", "paperless_billing": False},
        ]
    )
    events = events_frame(
        [
            (1, "2023-01-01 09:00", "session", 12.0),
            (1, "2023-05-20 09:00", "session", 30.0),
            (1, "2023-05-25 09:00", "online_purchase", 40.0),
            (2, "2023-04-02 10:00", "session", 8.0),
            (2, "2023-05-30 10:00", "support_ticket", None),
            (3, "2023-02-14 18:00", "late_payment", 29.99),
            (3, "2023-07-31 18:00", "session", 4.0),
        ]
    )
    churn = churn_frame([(3, "2023-06-12")])
    return customers, events, churn


def expected_rows() -> dict[tuple[int, str], dict]:
    """Hand-computed values for the small tables (period [2023-01-01, 2023-08-01))."""
    return {
        (1, "2023-06-01"): {"churned": 0, "sessions_30d": 1, "sessions_90d": 1,
                            "online_spend_90d": 40.0, "days_since_last_session": 12},
        (2, "2023-06-01"): {"churned": 0, "sessions_90d": 1, "support_tickets_30d": 1,
                            "days_since_last_session": 60, "tenure_days": 83},
        # The 2023-02-14 late payment is before 2023-06-01 - 90 days = 2023-03-03.
        (3, "2023-06-01"): {"churned": 1, "late_payments_90d": 0, "paperless_billing": 0,
                            "days_since_last_session": 90},
        (3, "2023-05-01"): {"churned": 0, "late_payments_90d": 1},
    }  # fmt: skip


def test_pipeline_reads_primary_tables_and_writes_model_input():
    pipe = create_pipeline()
    assert pipe.inputs() == PRIMARY_INPUTS | {
        "params:feature_engineering",
        "params:data_processing.input_mode",
    }
    assert pipe.outputs() == {"model_input_table@ibis"}
    names = [n.name for n in pipe.nodes]
    assert len(names) == len(set(names))
    assert "snapshot_spine" in pipe.all_outputs()


def test_pipeline_slice_on_in_memory_catalog():
    customers, events, churn = small_primary_frames()
    catalog = DataCatalog(
        {
            "customers_primary": MemoryDataset(as_table(customers, CUSTOMER_SCHEMA)),
            "events_primary": MemoryDataset(as_table(events, EVENT_SCHEMA)),
            "churn_records_primary": MemoryDataset(as_table(churn, CHURN_SCHEMA)),
            "params:feature_engineering": MemoryDataset(feature_parameters()),
            "params:data_processing.input_mode": MemoryDataset("event_log"),
            "model_input_table@ibis": MemoryDataset(),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    table = catalog.load("model_input_table@ibis").execute()
    config = FeatureEngineeringConfig.model_validate(feature_parameters())
    assert list(table.columns) == ["customer_id", "snapshot_date", "churned", *config.feature_names]
    # Derived period [2023-01-01, 2023-08-01): snapshots 2023-04-01 … 2023-07-01.
    assert sorted(table.snapshot_date.dt.strftime("%Y-%m-%d").unique()) == [
        "2023-04-01", "2023-05-01", "2023-06-01", "2023-07-01",
    ]  # fmt: skip
    # Customer 3 churned 2023-06-12: absent from 2023-07-01.
    assert set(table.loc[table.customer_id == 3, "snapshot_date"].dt.month) == {4, 5, 6}
    for (customer_id, snapshot), values in expected_rows().items():
        got = table[(table.customer_id == customer_id) & (table.snapshot_date == snapshot)]
        assert len(got) == 1, (customer_id, snapshot)
        for name, value in values.items():
            assert got.iloc[0][name] == pytest.approx(value), (customer_id, snapshot, name)


def _catalog_from_project_conf(tmp_path: Path) -> DataCatalog:
    """This pipeline's catalog entries, as committed, rooted in ``tmp_path``.

    The primary tables (written by data_processing) are added with the same Ibis connection.
    """
    conf = PROJECT_ROOT / "conf" / "base"
    engine = yaml.safe_load((conf / "globals.yml").read_text())["table_engine"]
    engine = {**engine, "memory_limit": "1GB", "threads": 1}
    engine["temp_directory"] = str(tmp_path / "spill")
    entries = yaml.safe_load((conf / "catalog_feature_engineering.yml").read_text())
    datasets = {}
    for name, entry in entries.items():
        entry = copy.deepcopy(entry)
        entry["filepath"] = str(tmp_path / entry["filepath"])
        if entry.get("connection") == "${globals:table_engine}":
            entry["connection"] = engine
        datasets[name] = entry
    customers, events, churn = small_primary_frames()
    for name, frame in (
        ("customers_primary", customers),
        ("events_primary", events),
        ("churn_records_primary", churn),
    ):
        path = tmp_path / "data" / "03_primary" / f"{name}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        datasets[name] = {
            "type": "ibis.FileDataset",
            "filepath": str(path),
            "file_format": "parquet",
            "table_name": name,
            "connection": engine,
        }
    catalog = DataCatalog.from_config(datasets)
    catalog["params:feature_engineering"] = MemoryDataset(feature_parameters())
    catalog["params:data_processing.input_mode"] = MemoryDataset("event_log")
    return catalog


def test_catalog_entries_write_ibis_and_read_back_with_pandas(tmp_path):
    catalog = _catalog_from_project_conf(tmp_path)
    assert isinstance(catalog.get("model_input_table@ibis"), FileDataset)
    assert isinstance(catalog.get("model_input_table@pandas"), ParquetDataset)
    SequentialRunner().run(create_pipeline(), catalog)

    assert (tmp_path / "data" / "04_feature" / "snapshot_spine.parquet").is_file()
    table = catalog.load("model_input_table@pandas")
    assert len(table) == 11  # customers 1 and 2 at 4 snapshots, 3 at 3
    assert str(table.churned.dtype) == "int64"
    assert str(table.snapshot_date.dtype) == "datetime64[ns]"  # as docs/data_model.md says
    got = table[(table.customer_id == 1) & (table.snapshot_date == "2023-06-01")].iloc[0]
    assert got["online_spend_90d"] == pytest.approx(40.0)
    assert got["days_since_last_session"] == 12


@pytest.mark.slow
def test_simulation_processing_features_end_to_end(project_copy, run_kedro):
    """``simulation → data_processing → feature_engineering`` on small data, via the CLI."""
    # Kedro's bootstrap insists that the source folder exists; the package itself is imported
    # from the editable install.
    (project_copy / "src").mkdir(exist_ok=True)
    sizes = (
        "simulation.n_months=12,simulation.population.initial_customers=400,"
        "simulation.population.monthly_signups=30,simulation.scenario.start_month=6"
    )
    run_kedro(project_copy, "run", "--pipeline", "simulation", "--params", sizes)
    run_kedro(project_copy, "run", "--pipeline", "data_processing")
    run_kedro(project_copy, "run", "--pipeline", "feature_engineering")

    table = pd.read_parquet(project_copy / "data" / "05_model_input" / "model_input_table.parquet")
    config = FeatureEngineeringConfig.model_validate(feature_parameters())
    assert list(table.columns) == ["customer_id", "snapshot_date", "churned", *config.feature_names]
    assert not table.duplicated(["customer_id", "snapshot_date"]).any()
    # 12 months from 2023-01-01, 3 months of history, 30-day horizon: 2023-04-01 … 2023-12-01.
    snapshots = sorted(table.snapshot_date.unique())
    assert pd.Timestamp(snapshots[0]) == pd.Timestamp("2023-04-01")
    assert pd.Timestamp(snapshots[-1]) == pd.Timestamp("2023-12-01")
    assert set(table.churned.unique()) == {0, 1}
    assert table[config.feature_names].notna().all().all()
    assert (table.sessions_30d <= table.sessions_90d).all()
    assert table.days_since_last_session.between(1, config.recency.cap_days).all()
    for spec in config.features:
        if spec.kind == "categorical":
            assert set(table[spec.name].unique()) <= set(spec.categories), spec.name

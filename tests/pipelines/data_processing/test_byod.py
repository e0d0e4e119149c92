"""Bring-your-own-data: the Telco walkthrough of docs/bring_your_own_data.md, run as written."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.pipelines.data_processing.conftest import (
    PROJECT_ROOT,
    TELCO_FILE_NAME,
    load_parameters,
    telco_like_frame,
)

DOC = PROJECT_ROOT / "docs" / "bring_your_own_data.md"


def _prepare_script() -> str:
    """The preparation script exactly as the docs show it."""
    text = DOC.read_text()
    block = re.search(
        r"<!-- prepare-telco: begin -->\s*```python\n(.*?)```\s*<!-- prepare-telco: end -->",
        text,
        re.DOTALL,
    )
    assert block, "docs/bring_your_own_data.md lost its prepare-telco block"
    return block.group(1)


def _without(tree: dict, *paths: tuple[str, ...]) -> dict:
    """A deep copy of ``tree`` without the given key paths."""
    tree = copy.deepcopy(tree)
    for path in paths:
        node = tree
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return tree


def test_byod_example_differs_from_base_only_where_documented():
    base = load_parameters("local")
    example = load_parameters("byod_example")

    dp_changes = [
        ("period",),
        ("tables", "customers", "rename"),
        ("tables", "customers", "value_maps"),
        ("tables", "customers", "fill_missing"),
    ]
    assert _without(example["data_processing"], *dp_changes) == _without(
        base["data_processing"], *dp_changes
    )
    fe_changes = [("snapshots", "period_start"), ("snapshots", "period_end")]
    assert _without(example["feature_engineering"], *fe_changes) == _without(
        base["feature_engineering"], *fe_changes
    )


def snake_case_copy(telco: pd.DataFrame) -> pd.DataFrame:
    """The Telco table as its common snake_case copies spell the columns."""
    return telco.rename(
        columns=lambda c: re.sub(r"(?<=[a-z])(?=[A-Z])", "_", c).lower().replace("i_d", "id")
    )


@pytest.mark.slow
@pytest.mark.parametrize("spelling", ["CamelCase", "snake_case"])
def test_telco_walkthrough_runs_as_documented(
    project_copy: Path, run_kedro: Callable, spelling: str
):
    telco_folder = project_copy / "data" / "01_raw" / "telco"
    telco_folder.mkdir(parents=True)
    telco = telco_like_frame(rows=60)
    as_written = telco if spelling == "CamelCase" else snake_case_copy(telco)
    if spelling == "snake_case":
        assert {"customer_id", "monthly_charges", "internet_service", "churn"} <= set(as_written)
    as_written.to_csv(telco_folder / TELCO_FILE_NAME, index=False)
    script = project_copy / "prepare_telco.py"
    script.write_text(_prepare_script())

    subprocess.run([sys.executable, str(script)], cwd=project_copy, check=True)
    run_kedro(
        project_copy,
        "run",
        "--env",
        "byod_example",
        "--pipelines",
        "data_processing,feature_engineering",
    )

    primary = project_copy / "data" / "03_primary"
    customers = pd.read_parquet(primary / "customers_primary.parquet")
    churn = pd.read_parquet(primary / "churn_records_primary.parquet")
    assert len(customers) == len(telco)
    assert set(customers["contract"]) <= {"month_to_month", "one_year", "two_year"}
    by_row = customers.sort_values("customer_id").reset_index(drop=True)
    expected_plan = telco["InternetService"].map(
        {"No": "basic", "DSL": "standard", "Fiber optic": "premium"}
    )
    assert by_row["plan"].tolist() == expected_plan.tolist()
    assert by_row["monthly_fee"].tolist() == telco["MonthlyCharges"].tolist()
    assert by_row["paperless_billing"].tolist() == (telco["PaperlessBilling"] == "Yes").tolist()
    assert len(churn) == (telco["Churn"] == "Yes").sum()

    model_input = pd.read_parquet(
        project_copy / "data" / "05_model_input" / "model_input_table.parquet"
    )
    assert model_input["snapshot_date"].unique().tolist() == [pd.Timestamp("2024-11-01")]
    assert len(model_input) == (telco["tenure"] >= 2).sum()
    churned_ids = set(churn["customer_id"])
    expected_labels = [int(i in churned_ids) for i in model_input["customer_id"]]
    assert model_input["churned"].tolist() == expected_labels

"""``churn-mlops byod init``: proposals from a table, and an environment that only overrides."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from churn_mlops import settings
from churn_mlops.byod import ScaffoldError, propose, snake_name, write_environment
from churn_mlops.pipelines.data_processing.nodes import parse_data_processing_parameters
from churn_mlops.pipelines.evaluation.nodes import validate_evaluation_parameters
from churn_mlops.pipelines.feature_engineering.nodes import validate_feature_parameters
from churn_mlops.pipelines.training.nodes import validate_training_parameters
from tests.conftest import PROJECT_ROOT


def dated_table(customers: int = 40, months: int = 3) -> pd.DataFrame:
    """A bank's monthly extract: a customer at each month end, flags as 0/1."""
    rng = np.random.default_rng(1)
    rows = customers * months
    return pd.DataFrame(
        {
            "ClientNo": np.tile(np.arange(100, 100 + customers), months),
            "month_end": np.repeat(
                pd.date_range("2024-01-31", periods=months, freq="ME"), customers
            ).strftime("%Y-%m-%d"),
            "Card Type": rng.choice(["VISA Gold", "Master-Card", "amex"], rows),
            "Balance": rng.uniform(0, 5000, rows).round(2),
            "Age": rng.integers(18, 90, rows),
            "HasLoan": rng.integers(0, 2, rows),
            "Surname": [f"name{i}" for i in range(rows)],
            "Bank": "one bank",
            "Exited": rng.integers(0, 2, rows),
        }
    )


def test_proposal_finds_roles_features_and_what_it_leaves_out(tmp_path: Path):
    path = tmp_path / "bank.parquet"
    dated_table().to_parquet(path)
    proposal = propose(path)
    assert (proposal.id_column, proposal.label_column, proposal.date_column) == (
        "ClientNo",
        "Exited",
        "month_end",
    )
    assert proposal.as_of_date is None
    by_name = {f["name"]: f for f in proposal.features}
    assert by_name["card_type"]["categories"] == ["amex", "master_card", "visa_gold"]
    assert by_name["balance"] == {
        "name": "balance",
        "kind": "numeric",
        "min": 0,
        "description": by_name["balance"]["description"],
    }
    assert by_name["has_loan"]["max"] == 1
    assert proposal.rename == {
        "Card Type": "card_type",
        "Balance": "balance",
        "Age": "age",
        "HasLoan": "has_loan",
    }
    assert set(proposal.ignored) == {"Surname", "Bank"}
    assert proposal.columns["churned"] == {
        "dtype": "int64",
        "description": "Exited: churn label",
        "min": 0,
        "max": 1,
    }


def test_an_undated_table_gets_the_as_of_date_and_text_ids(tmp_path: Path):
    path = tmp_path / "crm.csv"
    pd.DataFrame(
        {
            "cust": ["a-1", "a-2", "a-3", "a-4"],
            "plan": ["x", "y", "x", "y"],
            "churn_flag": ["Yes", "No", "No", "Yes"],
        }
    ).to_csv(path, index=False)
    proposal = propose(path, id_column="cust", as_of_date=dt.date(2025, 1, 31))
    assert proposal.date_column is None and proposal.as_of_date == dt.date(2025, 1, 31)
    assert proposal.columns["customer_id"]["dtype"] == "string"
    assert proposal.columns["churned"]["dtype"] == "boolean"


def test_a_table_without_a_label_is_refused_with_what_to_pass(tmp_path: Path):
    path = tmp_path / "no_label.csv"
    pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.0]}).to_csv(path, index=False)
    with pytest.raises(ScaffoldError, match="pass --label"):
        propose(path)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("MonthlyCharges", "monthly_charges"),
        ("Card Type", "card_type"),
        ("2nd-line", "col_2nd_line"),
    ],
)
def test_snake_names(column: str, expected: str):
    assert snake_name(column) == expected


def test_the_environment_holds_only_overrides_and_validates_against_base(tmp_path: Path):
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf" / "base", project / "conf" / "base")
    table = project / "data" / "01_raw" / "bank.parquet"
    table.parent.mkdir(parents=True)
    dated_table().to_parquet(table)
    written = write_environment(propose(table), project, "bank")
    assert {p.name for p in written} == {
        "catalog_raw.yml",
        "parameters_data_processing.yml",
        "parameters_feature_engineering.yml",
        "parameters_training.yml",
        "parameters_evaluation.yml",
    }
    training = yaml.safe_load((project / "conf/bank/parameters_training.yml").read_text())
    assert training == {"training": {"candidates": {"xgboost": {"monotone_increasing": []}}}}
    catalog = yaml.safe_load((project / "conf/bank/catalog_raw.yml").read_text())
    assert catalog["customers@ibis"]["filepath"] == "data/01_raw/bank.parquet"
    assert catalog["events@ibis"] == {"type": "MemoryDataset", "data": None}

    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / "conf"), env="bank", **settings.CONFIG_LOADER_ARGS
    )
    params = loader["parameters"]
    dp = parse_data_processing_parameters(params["data_processing"])
    customers = dp.tables["customers"]
    assert customers.unique_key == ["customer_id", "snapshot_date"]
    assert customers.rename["ClientNo"] == "customer_id"
    assert customers.rename["month_end"] == "snapshot_date"
    assert dp.tables["events"] is not None  # base tables kept: a partial override
    fe = validate_feature_parameters(params["feature_engineering"], "customer_table")
    assert fe.table_features == ["card_type", "balance", "age", "has_loan"]
    validate_training_parameters(params["training"], params["feature_engineering"]["features"])
    setup = validate_evaluation_parameters(
        params["evaluation"], params["training"], params["feature_engineering"]["features"]
    )
    assert setup.evaluation.segments.age_column == "age"

    with pytest.raises(ScaffoldError, match="--force"):
        write_environment(propose(table), project, "bank")


@pytest.mark.parametrize("spelling", ["CamelCase", "snake_case"])
def test_the_telco_table_needs_no_preparation_in_either_spelling(tmp_path: Path, spelling: str):
    from tests.pipelines.data_processing.conftest import telco_like_frame
    from tests.pipelines.data_processing.test_byod import snake_case_copy

    telco = telco_like_frame(rows=200)
    table = telco if spelling == "CamelCase" else snake_case_copy(telco)
    path = tmp_path / "telco.csv"
    table.to_csv(path, index=False)
    proposal = propose(path, as_of_date=dt.date(2024, 12, 1))
    ids = {"CamelCase": ("customerID", "Churn"), "snake_case": ("customer_id", "churn")}
    assert (proposal.id_column, proposal.label_column) == ids[spelling]
    names = [f["name"] for f in proposal.features]
    assert len(names) == 18 and "monthly_charges" in names and "contract" in names
    assert list(proposal.ignored) == [
        "TotalCharges" if spelling == "CamelCase" else "total_charges"
    ]
    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf" / "base", project / "conf" / "base")
    write_environment(proposal, project, "telco")
    params = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / "conf"), env="telco", **settings.CONFIG_LOADER_ARGS
    )["parameters"]
    dp = parse_data_processing_parameters(params["data_processing"])
    assert dp.tables["customers"].columns["contract"].categories == [
        "month_to_month",
        "one_year",
        "two_year",
    ]
    validate_feature_parameters(params["feature_engineering"], "customer_table")

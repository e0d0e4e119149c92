"""Node tests of data_processing: every failure class, soft rules, cleaning, bring-your-own-data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pydantic
import pytest
from kedro_datasets.ibis import FileDataset

from churn_mlops.pipelines.data_processing import nodes
from churn_mlops.pipelines.data_processing.errors import (
    DataProcessingConfigError,
    DataValidationError,
)
from churn_mlops.pipelines.data_processing.params import DataProcessingParams
from tests.pipelines.data_processing.conftest import Frames, as_ibis, load_parameters

PREPARE = {
    "customers": nodes.prepare_customers,
    "events": nodes.prepare_events,
    "churn_records": nodes.prepare_churn_records,
}


def _raw(frames: Frames, overrides: dict[str, ibis.Table] | None = None) -> dict[str, ibis.Table]:
    return {**as_ibis(frames), **(overrides or {})}


def _validate(
    frames: Frames, config: DataProcessingParams, overrides: dict[str, ibis.Table] | None = None
) -> dict:
    raw = _raw(frames, overrides)
    prepared = {name: PREPARE[name](table, config) for name, table in raw.items()}
    return nodes.validate_raw_tables(
        raw["customers"],
        raw["events"],
        raw["churn_records"],
        prepared["customers"],
        prepared["events"],
        prepared["churn_records"],
        config,
    )


def _clean(
    frames: Frames, config: DataProcessingParams, overrides: dict[str, ibis.Table] | None = None
) -> dict[str, pd.DataFrame]:
    """Validate, gate and clean in memory; return primary tables and the quarantine (pandas).

    ``overrides`` replaces raw tables built from ``frames`` (e.g. a table read from a CSV).
    """
    report = _validate(frames, config, overrides)
    passed = nodes.enforce_hard_rules(report)
    raw = _raw(frames, overrides)
    prepared = {name: PREPARE[name](table, config) for name, table in raw.items()}
    customers, q_customers = nodes.clean_customers(prepared["customers"], passed, config)
    events, q_events = nodes.clean_events(prepared["events"], customers, passed, config)
    churn, q_churn = nodes.clean_churn_records(
        prepared["churn_records"], customers, events, passed, config
    )
    quarantine = nodes.build_quarantine(q_customers, q_events, q_churn)
    # Row order is not part of the contract (engines may shuffle it): sort for comparisons.
    return {
        "customers": _sorted(customers, ["customer_id"]),
        "events": _sorted(events, ["customer_id", "event_time", "event_type"]),
        "churn_records": _sorted(churn, ["customer_id"]),
        "quarantine": _sorted(quarantine, ["table", "row_id", "column", "rule"]),
        "report": report,
    }


def _sorted(table: ibis.Table, keys: list[str]) -> pd.DataFrame:
    return table.to_pandas().sort_values(keys).reset_index(drop=True)


def _hard_error(frames: Frames, config: DataProcessingParams) -> DataValidationError:
    report = _validate(frames, config)
    assert report["passed"] is False
    with pytest.raises(DataValidationError) as info:
        nodes.enforce_hard_rules(report)
    return info.value


# --------------------------------------------------------------------------------------------
# Valid data
# --------------------------------------------------------------------------------------------


def test_valid_tables_pass_and_keep_every_row(frames: Frames, config: DataProcessingParams):
    out = _clean(frames, config)

    assert out["report"]["passed"] is True
    assert out["report"]["failures"] == []
    assert len(out["customers"]) == 6
    assert len(out["events"]) == 12
    assert len(out["churn_records"]) == 2
    assert out["quarantine"].empty
    assert list(out["quarantine"].columns) == list(nodes.QUARANTINE_COLUMNS)
    assert out["report"]["tables"]["events"]["rows_primary"] == 12


def test_primary_tables_have_contract_columns_and_types(
    frames: Frames, config: DataProcessingParams
):
    frames["customers"]["referral_code"] = "x"  # a column outside the contract
    out = _clean(frames, config)

    customers = out["customers"]
    assert list(customers.columns) == list(config.tables["customers"].columns)
    assert customers["customer_id"].dtype == "int64"
    assert customers["age"].dtype == "int64"
    assert customers["paperless_billing"].dtype == bool
    assert customers["monthly_fee"].dtype == "float64"
    assert pd.api.types.is_datetime64_any_dtype(customers["signup_date"])
    assert list(out["events"].columns) == list(config.tables["events"].columns)
    assert out["report"]["tables"]["customers"]["columns_ignored"] == ["referral_code"]


# --------------------------------------------------------------------------------------------
# Hard rules: every failure class, alone and all together
# --------------------------------------------------------------------------------------------


def _wrong_type(f: Frames) -> None:
    f["customers"]["age"] = f["customers"]["age"].astype(str).str.cat(["y"] * 6)


def _negative_age(f: Frames) -> None:
    f["customers"].loc[2, "age"] = -4


def _unknown_contract(f: Frames) -> None:
    f["customers"].loc[1, "contract"] = "weekly"


def _unknown_customer(f: Frames) -> None:
    f["events"].loc[3, "customer_id"] = 999


def _duplicate_id(f: Frames) -> None:
    customers = f["customers"]
    f["customers"] = pd.concat([customers, customers.iloc[[2]].assign(age=48)])


def _out_of_period(f: Frames) -> None:
    f["churn_records"].loc[1, "churn_date"] = pd.Timestamp("2026-02-01")


def _missing_column(f: Frames) -> None:
    f["customers"] = f["customers"].drop(columns="plan")


def _null_key(f: Frames) -> None:
    f["churn_records"]["customer_id"] = pd.array([2, None], dtype="Int64")


def _fractional_integer(f: Frames) -> None:
    f["customers"]["age"] = f["customers"]["age"].astype("float64")
    f["customers"].loc[0, "age"] = 23.5


@pytest.mark.parametrize(
    ("breakage", "table", "column", "rule", "quoted"),
    [
        (_wrong_type, "customers", "age", "dtype", "got string"),
        (_negative_age, "customers", "age", "min", "(customer_id=3): -4"),
        (_unknown_contract, "customers", "contract", "categories", "'weekly'"),
        (_unknown_customer, "events", "customer_id", "foreign_key", ": 999"),
        (_duplicate_id, "customers", "customer_id", "unique", "customer_id=3"),
        (_out_of_period, "churn_records", "churn_date", "in_period", "2026-02-01"),
        (_missing_column, "customers", "plan", "required", "column is missing"),
        (_null_key, "churn_records", "customer_id", "nullable", "(customer_id=null): null"),
        (_fractional_integer, "customers", "age", "integral", "23.5"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_each_hard_failure_is_named_with_examples(
    frames: Frames,
    config: DataProcessingParams,
    breakage: Callable[[Frames], None],
    table: str,
    column: str,
    rule: str,
    quoted: str,
):
    breakage(frames)

    error = _hard_error(frames, config)

    assert [(f["table"], f["column"], f["rule"]) for f in error.failures] == [(table, column, rule)]
    line = next(x for x in str(error).splitlines() if f"{table}.{column} [{rule}]" in x)
    assert quoted in line


def test_one_error_names_every_failure_with_counts(frames: Frames, config: DataProcessingParams):
    # The example: a wrong type, a negative age, an unknown contract and an event for
    # an unknown customer; plus a duplicate id, an out-of-period date and a missing column.
    frames["customers"]["monthly_fee"] = frames["customers"]["monthly_fee"].astype(str)
    frames["customers"].loc[[1, 4], "age"] = [-1, -7]
    frames["customers"].loc[0, "contract"] = "lifetime"
    frames["customers"] = pd.concat(
        [frames["customers"], frames["customers"].iloc[[3]].assign(plan="premium")]
    ).drop(columns="region")
    frames["events"].loc[[0, 7], "customer_id"] = [404, 405]
    frames["churn_records"].loc[0, "churn_date"] = pd.Timestamp("2019-12-31")

    error = _hard_error(frames, config)

    failures = {(f["table"], f["column"], f["rule"]): f for f in error.failures}
    assert set(failures) == {
        ("customers", "monthly_fee", "dtype"),
        ("customers", "age", "min"),
        ("customers", "contract", "categories"),
        ("customers", "customer_id", "unique"),
        ("customers", "region", "required"),
        ("events", "customer_id", "foreign_key"),
        ("churn_records", "churn_date", "in_period"),
    }
    assert failures[("customers", "age", "min")]["count"] == 2
    assert failures[("events", "customer_id", "foreign_key")]["count"] == 2
    assert failures[("customers", "customer_id", "unique")]["count"] == 2
    message = str(error)
    assert "7 hard rule failure(s) in 3 table(s)" in message
    for table, column, rule in failures:
        assert f"{table}.{column} [{rule}]" in message
    for quoted in ("-1", "-7", "'lifetime'", "404", "405", "2019-12-31", "got string"):
        assert quoted in message


def test_failing_report_is_complete_before_the_gate_raises(
    frames: Frames, config: DataProcessingParams
):
    _negative_age(frames)
    frames["events"].loc[0, "amount"] = -3.0  # soft: reported next to the hard failure

    report = _validate(frames, config)

    severities = {(f["column"], f["rule"]): f["severity"] for f in report["failures"]}
    assert severities == {("age", "min"): "hard", ("amount", "min"): "soft"}
    assert "rows_primary" not in report["tables"]["customers"]  # nothing to promise yet


# --------------------------------------------------------------------------------------------
# Soft rules and quarantine
# --------------------------------------------------------------------------------------------


def test_soft_failures_go_to_quarantine_with_reasons(frames: Frames, config: DataProcessingParams):
    events = frames["events"]
    events.loc[2, "amount"] = -19.5  # payment with a negative amount
    events.loc[0, "duration_minutes"] = np.nan  # session without a duration
    events.loc[10, "event_time"] = pd.Timestamp("2025-03-01")  # after the period
    events.loc[5, "amount"] = np.nan  # purchase without an amount

    out = _clean(frames, config)

    quarantine = out["quarantine"].sort_values(["column", "rule"]).reset_index(drop=True)
    assert quarantine[["table", "column", "rule"]].values.tolist() == [
        ["events", "amount", "min"],
        ["events", "amount", "required_when"],
        ["events", "duration_minutes", "required_when"],
        ["events", "event_time", "in_period"],
    ]
    negative = quarantine.iloc[0]
    assert negative["value"] == "-19.5"
    assert negative["row_id"].startswith("1|2023-02-01 09:00:00|payment")
    assert negative["reason"] == "amount must be >= 0"
    assert "2025-03-01" in quarantine.iloc[3]["value"]
    assert len(out["events"]) == 12 - 4
    assert out["report"]["tables"]["events"]["rows_quarantined"] == 4
    soft = {(f["column"], f["rule"]): f["count"] for f in out["report"]["failures"]}
    assert soft == {
        ("amount", "min"): 1,
        ("amount", "required_when"): 1,
        ("duration_minutes", "required_when"): 1,
        ("event_time", "in_period"): 1,
    }


def test_rows_of_a_quarantined_customer_follow_it(frames: Frames, dp_parameters: dict):
    dp_parameters["tables"]["customers"]["soft_rules"] = ["age.min"]
    config = DataProcessingParams.model_validate(dp_parameters)
    frames["customers"].loc[0, "age"] = 5  # customer 1 is quarantined, with its 3 events

    out = _clean(frames, config)

    assert 1 not in set(out["customers"]["customer_id"])
    assert 1 not in set(out["events"]["customer_id"])
    rules = out["quarantine"].groupby(["table", "rule"]).size().to_dict()
    assert rules == {("customers", "min"): 1, ("events", "foreign_key"): 3}
    assert out["report"]["tables"]["events"]["rows_quarantined"] == 3


def test_soft_unknown_customer_is_quarantined_not_fatal(frames: Frames, dp_parameters: dict):
    dp_parameters["tables"]["events"]["soft_rules"].append("customer_id.foreign_key")
    config = DataProcessingParams.model_validate(dp_parameters)
    _unknown_customer(frames)

    out = _clean(frames, config)

    row = out["quarantine"].iloc[0]
    assert (row["table"], row["column"], row["rule"], row["value"]) == (
        "events",
        "customer_id",
        "foreign_key",
        "999",
    )
    assert len(out["events"]) == 11


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------


def test_exact_duplicates_are_dropped_and_counted(frames: Frames, config: DataProcessingParams):
    frames["customers"] = pd.concat([frames["customers"], frames["customers"].iloc[[0, 0]]])
    frames["events"] = pd.concat([frames["events"], frames["events"].iloc[[4]]])

    out = _clean(frames, config)

    assert out["report"]["tables"]["customers"]["exact_duplicates_dropped"] == 2
    assert out["report"]["tables"]["events"]["exact_duplicates_dropped"] == 1
    assert len(out["customers"]) == 6
    assert len(out["events"]) == 12


def test_category_text_is_normalised(frames: Frames, config: DataProcessingParams):
    frames["customers"]["contract"] = [
        " Month-to-Month",
        "ONE YEAR",
        "two-year",
        "month to month",
        "One_Year ",
        "Two Year",
    ]
    frames["events"].loc[0, "event_type"] = "Session "

    out = _clean(frames, config)

    assert out["customers"]["contract"].tolist() == [
        "month_to_month",
        "one_year",
        "two_year",
        "month_to_month",
        "one_year",
        "two_year",
    ]
    assert (out["events"]["event_type"] == "session").sum() == 5


def test_compatible_types_are_converted(frames: Frames, config: DataProcessingParams):
    customers = frames["customers"]
    customers["age"] = customers["age"].astype("int32")
    customers["monthly_fee"] = customers["monthly_fee"].round().astype("int64")
    customers["paperless_billing"] = np.where(customers["paperless_billing"], "Yes", "no")
    customers["signup_date"] = customers["signup_date"].dt.date  # date, not timestamp
    frames["churn_records"]["customer_id"] = frames["churn_records"]["customer_id"].astype(float)

    out = _clean(frames, config)

    assert out["customers"]["age"].dtype == "int64"
    assert out["customers"]["monthly_fee"].dtype == "float64"
    assert out["customers"]["paperless_billing"].tolist() == [True, False, True, True, False, True]
    assert pd.api.types.is_datetime64_any_dtype(out["customers"]["signup_date"])
    assert out["churn_records"]["customer_id"].tolist() == [2, 4]


def test_unreadable_boolean_text_is_a_hard_failure(frames: Frames, config: DataProcessingParams):
    frames["customers"]["paperless_billing"] = ["yes", "no", "maybe", "yes", "no", "yes"]

    error = _hard_error(frames, config)

    assert [(f["column"], f["rule"]) for f in error.failures] == [
        ("paperless_billing", "boolean_text")
    ]
    assert "'maybe'" in str(error)


# --------------------------------------------------------------------------------------------
# Bring your own data: rename, value maps, fill_missing, CSV
# --------------------------------------------------------------------------------------------


def test_their_csv_maps_onto_the_contract_by_parameters_only(
    tmp_path: Path, frames: Frames, dp_parameters: dict
):
    theirs = frames["customers"].rename(
        columns={
            "customer_id": "customerID",
            "contract": "Contract",
            "payment_method": "PaymentMethod",
            "monthly_fee": "MonthlyCharges",
            "paperless_billing": "PaperlessBilling",
        }
    )
    theirs["Contract"] = theirs["Contract"].map(
        {"month_to_month": "Month-to-month", "one_year": "One year", "two_year": "Two year"}
    )
    theirs["PaymentMethod"] = theirs["PaymentMethod"].map(
        {
            "credit_card": "Credit card (automatic)",
            "bank_transfer": "Bank transfer (automatic)",
            "electronic_check": "Electronic check",
            "mailed_check": "Mailed check",
        }
    )
    theirs["PaperlessBilling"] = theirs["PaperlessBilling"].map({True: "Yes", False: "No"})
    theirs = theirs.drop(columns="region")
    csv = tmp_path / "their_customers.csv"
    theirs.to_csv(csv, index=False)
    dp_parameters["tables"]["customers"].update(
        rename={
            "customerID": "customer_id",
            "Contract": "contract",
            "PaymentMethod": "payment_method",
            "MonthlyCharges": "monthly_fee",
            "PaperlessBilling": "paperless_billing",
        },
        value_maps={
            "payment_method": {
                "Credit card (automatic)": "credit_card",
                "Bank transfer (automatic)": "bank_transfer",
            }
        },
        fill_missing={"region": "central"},
    )
    config = DataProcessingParams.model_validate(dp_parameters)
    customers = FileDataset(filepath=str(csv), file_format="csv", table_name="their_customers")

    # Every table on the CSV dataset's connection, as the catalog's shared engine does.
    loaded = customers.load()
    connection = customers.connection
    others = {
        name: connection.create_table(f"raw_{name}", ibis.memtable(frames[name]), overwrite=True)
        for name in ("events", "churn_records")
    }
    out = _clean(frames, config, overrides={"customers": loaded, **others})

    expected = valid_customers_after_mapping()
    pd.testing.assert_frame_equal(
        out["customers"].drop(columns="signup_date"), expected, check_dtype=False
    )
    assert out["customers"]["customer_id"].dtype == "int64"


def valid_customers_after_mapping() -> pd.DataFrame:
    """The valid customers as the contract sees them, with `region` filled by fill_missing."""
    from tests.pipelines.data_processing.conftest import valid_frames

    customers = valid_frames()["customers"].drop(columns="signup_date")
    customers["region"] = "central"
    return customers


def test_rename_onto_an_existing_column_is_a_config_error(frames: Frames, dp_parameters: dict):
    dp_parameters["tables"]["customers"]["rename"] = {"plan": "contract"}
    config = DataProcessingParams.model_validate(dp_parameters)

    with pytest.raises(DataProcessingConfigError, match=r"\['contract'\]"):
        nodes.prepare_customers(as_ibis(frames)["customers"], config)


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("tables", "events", "soft_rules"), ["customer_id.dtype"], "structural"),
        (("tables", "events", "soft_rules"), ["amount.max"], "matches no rule"),
        (("tables", "customers", "columns", "age", "categories"), ["a"], "categories need"),
        (("tables", "customers", "colums"), {}, "Extra inputs are not permitted"),
        (("period", "end_date"), "2022-01-01", "exactly one of end_date or months"),
        (("period", "months"), 0, "greater than or equal to 1"),
        (
            ("tables", "events", "foreign_keys"),
            [{"column": "customer_id", "references": "customers.id"}],
            "customers.id",
        ),
    ],
)
def test_bad_parameters_are_refused_with_the_key_named(
    dp_parameters: dict, path: tuple[str, ...], value, match: str
):
    target = dp_parameters
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(pydantic.ValidationError, match=match):
        nodes.parse_data_processing_parameters(dp_parameters)


def test_period_defaults_to_the_simulated_period(config: DataProcessingParams):
    simulation = load_parameters()["simulation"]

    assert str(config.period.start_date) == simulation["start_date"]
    assert config.period.months == simulation["n_months"]
    assert str(config.period.end) == "2025-01-01"  # the default 2023-01-01 + 24 months


def test_period_end_date_must_follow_start(dp_parameters: dict):
    dp_parameters["period"] = {"start_date": "2024-05-01", "end_date": "2024-05-01"}

    with pytest.raises(pydantic.ValidationError, match="must be before the period end"):
        nodes.parse_data_processing_parameters(dp_parameters)

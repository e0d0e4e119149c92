"""A table without a time axis is split at random, stratified by the label and seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn_mlops.contracts.features import parse_feature_list
from churn_mlops.pipelines.training.errors import TimeSplitError
from churn_mlops.pipelines.training.nodes import split_by_snapshot_month
from churn_mlops.pipelines.training.params import parse_training_params

SPECS = parse_feature_list([{"name": "x", "kind": "numeric", "description": "x"}])


def _table(rows: int = 500, dates: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    day = pd.date_range("2024-01-01", periods=dates, freq="MS")
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "snapshot_date": np.resize(day.to_numpy(), rows),
            "churned": (rng.random(rows) < 0.2).astype("int64"),
            "x": rng.normal(size=rows),
        }
    )


def test_one_snapshot_date_gives_a_seeded_stratified_random_split():
    table = _table()
    cfg = parse_training_params({"seed": 7})
    train, validation, test, summary = split_by_snapshot_month(table, SPECS, cfg)
    assert summary["strategy"] == "stratified_random" and summary["seed"] == 7
    assert len(train) + len(validation) + len(test) == len(table)
    assert len(test) == 100 and len(validation) == 100
    assert set(train.customer_id).isdisjoint(test.customer_id)
    rate = table.churned.mean()
    for frame in (train, validation, test):
        assert abs(frame.churned.mean() - rate) < 0.02  # stratified
    again = split_by_snapshot_month(table, SPECS, cfg)[2]
    pd.testing.assert_frame_equal(test, again)  # same seed, same test rows: the gate's split
    other = split_by_snapshot_month(table, SPECS, parse_training_params({"seed": 8}))[2]
    assert set(other.customer_id) != set(test.customer_id)


def test_auto_keeps_the_time_split_when_there_are_dates_and_time_can_be_forced():
    table = _table(rows=700, dates=7)
    summary = split_by_snapshot_month(table, SPECS, parse_training_params({}))[3]
    assert summary["strategy"] == "time"
    with pytest.raises(TimeSplitError, match="1 snapshot months"):
        split_by_snapshot_month(
            _table(), SPECS, parse_training_params({"split": {"strategy": "time"}})
        )


def test_too_few_rows_of_a_class_is_a_clear_error():
    table = _table(rows=40).assign(churned=[1] * 3 + [0] * 37)
    with pytest.raises(TimeSplitError, match="at least 6 rows of each class"):
        split_by_snapshot_month(table, SPECS, parse_training_params({}))

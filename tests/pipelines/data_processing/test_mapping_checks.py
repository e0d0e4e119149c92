"""``rename`` / ``value_maps`` keys that match nothing warn, naming the closest match."""

from __future__ import annotations

import logging

import pytest

from churn_mlops.pipelines.data_processing import nodes
from tests.pipelines.data_processing.conftest import as_ibis


def _config(dp_parameters: dict, **customers: object):
    dp_parameters["tables"]["customers"].update(customers)
    return nodes.parse_data_processing_parameters(dp_parameters)


def test_rename_key_matching_no_column_warns_with_the_closest_column(
    frames, dp_parameters, caplog: pytest.LogCaptureFixture
):
    raw = frames["customers"].rename(columns={"contract": "Contract"})
    config = _config(dp_parameters, rename={"Contrct": "contract"})
    with caplog.at_level(logging.WARNING):
        nodes.prepare_customers(as_ibis({"customers": raw})["customers"], config)
    (message,) = [r.getMessage() for r in caplog.records if "rename" in r.getMessage()]
    assert "'Contrct'" in message and "closest: 'Contract'" in message
    assert "tables.customers.rename" in message


def test_value_maps_key_matching_no_value_warns_with_the_closest_value(
    frames, dp_parameters, caplog: pytest.LogCaptureFixture
):
    raw = frames["customers"].assign(payment_method="Credit card (automatic)")
    config = _config(
        dp_parameters,
        value_maps={"payment_method": {"Credit card (automatc)": "credit_card"}},
    )
    with caplog.at_level(logging.WARNING):
        nodes.prepare_customers(as_ibis({"customers": raw})["customers"], config)
    (message,) = [r.getMessage() for r in caplog.records if "value_maps" in r.getMessage()]
    assert "'Credit card (automatc)'" in message
    assert "closest: 'credit_card_(automatic)'" in message


def test_mappings_that_match_stay_quiet(frames, dp_parameters, caplog):
    raw = frames["customers"].rename(columns={"contract": "Contract"})
    config = _config(dp_parameters, rename={"Contract": "contract"})
    with caplog.at_level(logging.WARNING):
        nodes.prepare_customers(as_ibis({"customers": raw})["customers"], config)
    assert not [r for r in caplog.records if "rename" in r.getMessage()]

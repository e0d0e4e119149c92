"""Declared categories that do not fit the data stop feature_engineering with a clear error."""

from __future__ import annotations

import logging

import ibis
import pytest

from churn_mlops.pipelines.feature_engineering.categories import check_feature_categories
from churn_mlops.pipelines.feature_engineering.nodes import (
    FeatureCategoryError,
    validate_feature_parameters,
)
from tests.pipelines.feature_engineering.conftest import feature_parameters

AREA = {
    "name": "area_code",
    "kind": "categorical",
    "categories": ["area_code_408", "area_code_415", "area_code_51"],  # typo: 510
    "description": "Area code.",
}
MINUTES = {"name": "day_minutes", "kind": "numeric", "min": 0, "description": "Minutes."}


def _config(mode: str, **overrides):
    params = {**feature_parameters(), "features": [AREA, MINUTES], **overrides}
    return validate_feature_parameters(params, mode)


def _table(areas: list[str]):
    return ibis.memtable({"area_code": areas, "day_minutes": [float(i) for i in range(len(areas))]})


AREAS = ["area_code_408"] * 5 + ["area_code_415"] * 10 + ["area_code_510"] * 5


def test_a_typo_in_the_categories_names_column_unseen_values_and_share():
    with pytest.raises(FeatureCategoryError) as caught:
        check_feature_categories(_table(AREAS), _config("customer_table"))
    message = str(caught.value)
    assert "'area_code'" in message
    assert "['area_code_51'] occur in no row" in message
    assert "25.0% of rows have values outside its categories" in message
    assert "area_code_510" in message


def test_unknown_share_above_the_threshold_stops_even_with_every_category_seen():
    config = _config(
        "customer_table",
        features=[{**AREA, "categories": ["area_code_408", "area_code_415"]}, MINUTES],
        max_unknown_category_share=0.2,
    )
    with pytest.raises(
        FeatureCategoryError, match=r"25\.0% of rows .* max_unknown_category_share=0\.2"
    ):
        check_feature_categories(_table(AREAS), config)
    # At or under the threshold it passes.
    lenient = _config(
        "customer_table",
        features=[{**AREA, "categories": ["area_code_408", "area_code_415"]}, MINUTES],
        max_unknown_category_share=0.25,
    )
    check_feature_categories(_table(AREAS), lenient)


def test_unseen_categories_only_warn_for_an_event_log(caplog: pytest.LogCaptureFixture):
    config = _config(
        "event_log",
        features=[{**AREA, "categories": [*AREA["categories"], "area_code_510"]}, MINUTES],
    )
    with caplog.at_level(logging.WARNING):
        check_feature_categories(_table(AREAS), config)
    assert any("['area_code_51']" in r.getMessage() for r in caplog.records)

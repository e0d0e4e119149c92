"""Evaluation records the Feast feature service and views of the model (metadata and tags)."""

from __future__ import annotations

import logging

from kedro.io import DataCatalog, MemoryDataset

from churn_mlops.contracts.metadata import ModelMetadata
from churn_mlops.pipelines.evaluation import nodes
from tests.feature_store.support import store_parameters
from tests.pipelines.training.synthetic import (
    evaluation_params,
    feature_list,
    training_params,
)


def test_metadata_names_the_views_serving_each_model_feature(
    xgboost_model, splits, decision_threshold, setup
):
    views = nodes.describe_feature_views(store_parameters(), setup)
    meta = nodes.build_model_metadata(
        xgboost_model, splits[0], decision_threshold, {"pr_auc": 0.4}, setup, views
    )
    parsed = ModelMetadata.model_validate({**meta, "model_version": "1"})
    assert parsed.feature_store is not None
    assert parsed.feature_store.feature_service == "churn_model"
    configured = store_parameters()["feature_views"]
    assert {v.name: list(v.features) for v in parsed.feature_store.feature_views} == configured


def test_registration_tags_carry_the_service_and_views(
    xgboost_model, splits, decision_threshold, setup
):
    views = nodes.describe_feature_views(store_parameters(), setup)
    meta = nodes.build_model_metadata(
        xgboost_model, splits[0], decision_threshold, {}, setup, views
    )
    summary = {
        "data_fingerprint": "abc",
        "splits": {"train": {"months": ["2023-01"]}, "test": {"months": ["2023-03"]}},
    }
    payload = nodes.prepare_model_registration(
        xgboost_model, meta, "card", {}, {"promote": True, "reason": "r", "champion_version": None},
        summary, {}, splits[2], splits[2].head(0), setup,
    )  # fmt: skip
    tags = payload["tags"]
    assert tags["feature_store.service"] == "churn_model"
    assert tags["feature_store.views"] == "customer_profile,customer_activity"
    assert tags["feature_store.view.customer_activity"] == "latest"


def test_a_feature_list_outside_the_views_records_none_and_says_why(
    caplog, xgboost_model, splits, decision_threshold
):
    own = [*feature_list(), {"name": "nps_score", "kind": "numeric", "description": "NPS"}]
    setup = nodes.validate_evaluation_parameters(evaluation_params(), training_params(), own)
    with caplog.at_level(logging.WARNING):
        views = nodes.describe_feature_views(store_parameters(), setup)
    assert "nps_score" in caplog.text and "cannot be served by customer id" in caplog.text
    # The node's output travels through a Kedro dataset, which refuses ``None``.
    catalog = DataCatalog({"model_feature_views": MemoryDataset()})
    catalog.save("model_feature_views", views)
    train = splits[0].assign(nps_score=7.0)
    meta = nodes.build_model_metadata(
        xgboost_model, train, decision_threshold, {}, setup, catalog.load("model_feature_views")
    )
    assert meta["feature_store"] is None

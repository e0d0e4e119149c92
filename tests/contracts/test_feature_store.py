"""The feature-store requirement: which Feast service and views a model reads, defined once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.contracts.metadata import ModelMetadata

FEATURES = [
    {"name": "age", "kind": "numeric"},
    {"name": "plan", "kind": "categorical", "categories": ["basic", "pro"]},
    {"name": "sessions_30d", "kind": "numeric"},
]
VIEWS = [
    {"name": "customer_profile", "features": ["age", "plan"]},
    {"name": "customer_activity", "features": ["sessions_30d"], "version": 2},
]


def _metadata(feature_store: dict | None) -> ModelMetadata:
    return ModelMetadata.model_validate(
        {
            "model_name": "churn_model",
            "model_version": 4,
            "threshold": 0.3,
            "features": FEATURES,
            "feature_store": feature_store,
        }
    )


def test_metadata_carries_the_service_and_views_serving_its_features():
    meta = _metadata({"feature_service": "churn_model", "feature_views": VIEWS})
    assert meta.feature_store is not None
    assert meta.feature_store.view_names == ("customer_profile", "customer_activity")
    assert meta.feature_store.online_store is None
    assert _metadata(None).feature_store is None  # metadata written before feature stores


def test_registry_tags_name_the_service_views_and_versions():
    requirement = FeatureStoreRequirement.model_validate(
        {"feature_service": "churn_model", "feature_views": VIEWS}
    )
    assert requirement.registry_tags() == {
        "feature_store.service": "churn_model",
        "feature_store.views": "customer_profile,customer_activity",
        "feature_store.view.customer_profile": "latest",
        "feature_store.view.customer_activity": "2",
    }


@pytest.mark.parametrize(
    "views,message",
    [
        ([VIEWS[0]], "missing ['sessions_30d']"),
        (
            [*VIEWS, {"name": "extra", "features": ["tenure_days"]}],
            "not model features ['tenure_days']",
        ),
        ([VIEWS[0], {**VIEWS[1], "name": "customer_profile"}], "customer_profile"),
        ([VIEWS[0], {"name": "more", "features": ["sessions_30d", "age"]}], "age"),
    ],
)
def test_views_must_serve_each_model_feature_exactly_once(views: list, message: str):
    with pytest.raises(ValidationError) as raised:
        _metadata({"feature_service": "churn_model", "feature_views": views})
    assert message in str(raised.value)


def test_online_store_is_one_feast_knows():
    with pytest.raises(ValidationError, match="online_store"):
        FeatureStoreRequirement.model_validate(
            {"feature_service": "s", "feature_views": VIEWS, "online_store": "memcached"}
        )

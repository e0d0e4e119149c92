"""The feature contract: one FeatureSpec for parameters, metadata and serving."""

from __future__ import annotations

import pytest

from churn_mlops.contracts.errors import ContractError
from churn_mlops.contracts.features import FeatureSpec, parse_feature_list
from churn_mlops.contracts.metadata import ModelMetadata


def test_parameters_and_metadata_entries_parse_to_the_same_spec():
    declared = {"name": "age", "kind": "numeric", "min": 18, "max": 100, "description": "age"}
    written = {**declared, "observed_min": 18.0, "observed_max": 90.0, "nullable": False}
    (from_params,) = parse_feature_list([declared])
    (from_metadata,) = ModelMetadata.model_validate(
        {"model_name": "m", "model_version": 3, "threshold": 0.3, "features": [written]}
    ).features
    assert isinstance(from_metadata, FeatureSpec)
    assert from_params.model_dump(exclude={"observed_min", "observed_max"}) == (
        from_metadata.model_dump(exclude={"observed_min", "observed_max"})
    )
    assert from_metadata.observed_max == 90.0


@pytest.mark.parametrize(
    "features,message",
    [
        ([{"name": "plan", "kind": "categorical"}], "features.0: Value error, categorical"),
        ([{"name": "age", "kind": "numeric", "categories": ["a"]}], "cannot have categories"),
        ([{"name": "age", "kind": "numeric", "min": 5, "max": 1}], "min (5.0) is above max"),
        ([{"name": "age", "kind": "numeric", "colour": "red"}], "features.0.colour = 'red'"),
        ([{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "numeric"}], "['a'] more"),
        ([], "features: List should have at least 1 item"),
    ],
)
def test_a_broken_feature_list_names_the_entry(features, message):
    with pytest.raises(ContractError, match="invalid feature list") as err:
        parse_feature_list(features)
    assert message in str(err.value)


def test_metadata_refuses_repeated_names_and_keeps_version_as_text():
    entry = {"name": "a", "kind": "numeric"}
    with pytest.raises(ValueError, match=r"features lists \['a'\] more than once"):
        ModelMetadata.model_validate(
            {"model_name": "m", "model_version": "1", "threshold": 0.5, "features": [entry, entry]}
        )
    meta = ModelMetadata.model_validate(
        {"model_name": "m", "model_version": 7, "threshold": 0.5, "features": [entry], "x": 1}
    )
    assert meta.model_version == "7" and meta.feature_names == ("a",)

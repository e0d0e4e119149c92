"""Contracts shared by training, export, serving and monitoring, each defined once here.

* :mod:`.features` — the feature contract (:class:`FeatureSpec`, :func:`parse_feature_list`);
* :mod:`.metadata` — ``model_metadata.json`` (:class:`ModelMetadata`);
* :mod:`.profile` — ``reference_profile.json`` (:class:`ReferenceProfile`, one layout, one
  parser, one serialiser);
* :mod:`.feature_store` — the Feast feature service and views a model reads
  (:class:`FeatureStoreRequirement`), in its metadata, bundle manifest and registry tags;
* :mod:`.artifacts` — the file names of a registered model version and of a bundle;
* :mod:`.statistics` — PSI, KL and the binning that drift reports and live metrics share;
* :mod:`.errors` — :class:`ContractError` and the one formatter of pydantic errors.

This package depends on pydantic and numpy only, so every other package can import it.
"""

from __future__ import annotations

from churn_mlops.contracts.errors import ContractError, ProfileContractError
from churn_mlops.contracts.feature_store import FeatureStoreRequirement, FeatureViewRequirement
from churn_mlops.contracts.features import FeatureSpec, parse_feature_list
from churn_mlops.contracts.metadata import ModelMetadata
from churn_mlops.contracts.profile import (
    CategoricalReference,
    NumericReference,
    ReferenceProfile,
    parse_reference_profile,
    profile_to_dict,
)

__all__ = [
    "CategoricalReference",
    "ContractError",
    "FeatureSpec",
    "FeatureStoreRequirement",
    "FeatureViewRequirement",
    "ModelMetadata",
    "NumericReference",
    "ReferenceProfile",
    "ProfileContractError",
    "parse_feature_list",
    "parse_reference_profile",
    "profile_to_dict",
]

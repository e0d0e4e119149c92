"""Which Feast feature service and views a model reads: in its metadata, bundle and registry tags.

The evaluation pipeline writes a :class:`FeatureStoreRequirement` into ``model_metadata.json``
(``feature_store``) and tags the registered version with :meth:`~FeatureStoreRequirement.
registry_tags`; the export copies it into the bundle's ``manifest.json`` with the online store
the deployment reads; the serving app checks at start-up that ``CHURN_FEATURE_REPO`` provides
it (``churn_mlops.serving.feature_check``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from churn_mlops.contracts.features import reject_duplicates

ONLINE_STORES = ("redis", "sqlite")
"""Online store types a deployment may declare (``feature_repo/feature_store*.yaml``)."""

OnlineStore = Literal["redis", "sqlite"]

TAG_PREFIX = "feature_store."
"""Prefix of the registered-model-version tags written from a requirement."""


class FeatureViewRequirement(BaseModel):
    """One Feast feature view and the features of it the model reads.

    Attributes:
        name: Feature view name in the Feast registry.
        features: The model's features served by this view, in the model's feature order.
        version: Feast's version number of the view when feature-view versioning is on;
            ``None`` otherwise (Feast's default, ``version="latest"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    features: tuple[str, ...] = Field(min_length=1)
    version: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _unique(self) -> FeatureViewRequirement:
        reject_duplicates(f"feature_store.feature_views[{self.name}].features", self.features)
        return self


class FeatureStoreRequirement(BaseModel):
    """The feature service and views a model reads, and (in a bundle) the online store.

    Attributes:
        feature_service: Feast feature service the online reads go through.
        feature_views: Each view with the model features it serves; together they serve
            every model feature exactly once.
        online_store: Online store type the deployment of a bundle reads (``redis`` or
            ``sqlite``); ``None`` in ``model_metadata.json``, where it is not yet decided.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature_service: str = Field(min_length=1)
    feature_views: tuple[FeatureViewRequirement, ...] = Field(min_length=1)
    online_store: OnlineStore | None = None

    @model_validator(mode="after")
    def _each_feature_in_one_view(self) -> FeatureStoreRequirement:
        reject_duplicates("feature_store.feature_views", [v.name for v in self.feature_views])
        reject_duplicates("feature_store features", self.feature_names)
        return self

    @property
    def view_names(self) -> tuple[str, ...]:
        """Feature view names in declaration order."""
        return tuple(view.name for view in self.feature_views)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Every feature the views serve to the model."""
        return tuple(name for view in self.feature_views for name in view.features)

    def registry_tags(self) -> dict[str, str]:
        """Tags of the registered model version: service, view names and each view's version.

        ``feature_store.views`` is ``customer_profile,customer_activity``; each
        ``feature_store.view.<name>`` holds ``latest`` or Feast's version number.
        """
        tags = {
            f"{TAG_PREFIX}service": self.feature_service,
            f"{TAG_PREFIX}views": ",".join(self.view_names),
        }
        for view in self.feature_views:
            tags[f"{TAG_PREFIX}view.{view.name}"] = (
                "latest" if view.version is None else str(view.version)
            )
        return tags

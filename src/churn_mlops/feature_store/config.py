"""Validated ``feature_store`` parameters: entity, feature views, TTL, materialization."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.contracts.features import FeatureSpec, parse_feature_list


class FeatureStoreConfig(BaseModel):
    """How the feature list is published in Feast.

    Attributes:
        entity: Feast entity name (``customer``).
        join_key: Column of ``model_input_table`` that identifies the entity.
        timestamp_field: Column holding each row's point in time (the snapshot date).
        ttl_days: How long after its snapshot a feature row may still answer a point-in-time
            or online lookup.
        feature_views: View name -> the features it holds. Together the views hold every
            feature of the feature list exactly once.
        feature_service: Name of the Feast feature service the model reads (all views).
        max_feature_age_days: Online rows older than this are flagged ``stale`` by serving
            and batch scoring.
        push_source: Name of the Feast push source of ``pushed_views``.
        pushed_views: Views whose online rows the Kafka consumer may refresh between
            materializations (``push_online_features``, docs/streaming.md); their features
            must all be computed from events. Empty: no push source.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str = Field(default="customer", min_length=1)
    join_key: str = Field(default="customer_id", min_length=1)
    timestamp_field: str = Field(default="snapshot_date", min_length=1)
    ttl_days: int = Field(default=45, ge=1)
    feature_views: dict[str, list[str]] = Field(min_length=1)
    feature_service: str = Field(default="churn_model", min_length=1)
    max_feature_age_days: float = Field(default=45.0, gt=0)
    push_source: str = Field(default="customer_activity_push", min_length=1)
    pushed_views: tuple[str, ...] = ()
    features: tuple[FeatureSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _views_cover_the_feature_list(self) -> FeatureStoreConfig:
        declared = [spec.name for spec in self.features]
        placed: dict[str, str] = {}
        for view, names in self.feature_views.items():
            for name in names:
                if name in placed:
                    raise ValueError(
                        f"feature_store.feature_views: {name!r} is in both {placed[name]!r} "
                        f"and {view!r}; each feature belongs to one view"
                    )
                placed[name] = view
        unknown = sorted(set(placed) - set(declared))
        if unknown:
            raise ValueError(
                f"feature_store.feature_views lists {unknown}, which are not in "
                f"feature_engineering.features (declared: {declared})"
            )
        missing = [name for name in declared if name not in placed]
        if missing:
            raise ValueError(
                f"feature_store.feature_views: features {missing} of feature_engineering.features "
                f"are in no view; add each to one of {sorted(self.feature_views)}"
            )
        unknown_views = [view for view in self.pushed_views if view not in self.feature_views]
        if unknown_views:
            raise ValueError(
                f"feature_store.pushed_views lists {unknown_views}, which are not feature views "
                f"(views: {sorted(self.feature_views)})"
            )
        return self

    @property
    def feature_names(self) -> list[str]:
        """Feature names in contract order."""
        return [spec.name for spec in self.features]

    @property
    def view_of(self) -> dict[str, str]:
        """Feature name -> the view that holds it."""
        return {name: view for view, names in self.feature_views.items() for name in names}

    def requirement(self) -> FeatureStoreRequirement:
        """The feature service and views a model trained on the feature list reads.

        Each view lists its features in feature-list order; views are in configured order.
        """
        view_of = self.view_of
        return FeatureStoreRequirement(
            feature_service=self.feature_service,
            feature_views=tuple(
                {"name": view, "features": [n for n in self.feature_names if view_of[n] == view]}
                for view, names in self.feature_views.items()
                if names
            ),
        )


def parse_feature_store_config(
    parameters: dict[str, Any], features: list[dict[str, Any]]
) -> FeatureStoreConfig:
    """Validate ``params:feature_store`` against the feature list of feature_engineering.

    Args:
        parameters: The ``feature_store`` parameters.
        features: ``feature_engineering.features``, the feature contract.

    Returns:
        The validated configuration.
    """
    return FeatureStoreConfig.model_validate(
        {**parameters, "features": tuple(parse_feature_list(features))}
    )

"""The Feast objects of the project, built from the feature list and ``feature_store`` params.

One home per concept: names, kinds and descriptions come from
``feature_engineering.features``; the grouping into views, the TTL and the entity from
``feature_store``. Nothing here touches a registry or a file: :func:`build_feature_definitions`
is a pure function, applied by :mod:`churn_mlops.feature_store.repository`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

import churn_mlops.feature_store.feast_import  # noqa: F401 - before feast (see there)

# isort: split
from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    PushSource,
    ValueType,
)
from feast.types import Bool, Float64, Int64, PrimitiveFeastType, String

from churn_mlops.feature_store.config import FeatureStoreConfig

SOURCE_NAME = "model_input_table"
"""Name of the Feast data source over feature_engineering's output."""


class FeatureDefinitionError(ValueError):
    """The offline source cannot carry the declared features (missing column, odd dtype)."""


@dataclass(frozen=True)
class FeatureDefinitions:
    """Everything ``FeatureStore.apply`` registers for the churn model."""

    entity: Entity
    source: FileSource
    views: tuple[FeatureView, ...]
    service: FeatureService
    push_source: PushSource | None = None

    @property
    def objects(self) -> list[object]:
        """The objects in the order Feast applies them."""
        pushed = [self.push_source] if self.push_source is not None else []
        return [self.entity, self.source, *pushed, *self.views, self.service]


def feast_type(column: str, dtype: object) -> PrimitiveFeastType:
    """The Feast type that stores a pandas column of ``dtype`` without conversion.

    Raises:
        FeatureDefinitionError: the dtype has no Feast counterpart.
    """
    if pd.api.types.is_bool_dtype(dtype):
        return Bool
    if pd.api.types.is_integer_dtype(dtype):
        return Int64
    if pd.api.types.is_float_dtype(dtype):
        return Float64
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return String
    raise FeatureDefinitionError(
        f"model_input_table column {column!r} has dtype {dtype}; a feature must be boolean, "
        "integer, float or string"
    )


def build_feature_definitions(
    config: FeatureStoreConfig, dtypes: dict[str, object], source_path: str
) -> FeatureDefinitions:
    """Entity ``customer``, one feature view per configured group, and the model's service.

    Args:
        config: Validated ``feature_store`` parameters with the feature list.
        dtypes: Column -> pandas dtype of the offline source (``model_input_table``).
        source_path: Absolute path of the Parquet source.

    Returns:
        The Feast objects, not yet registered.

    Raises:
        FeatureDefinitionError: a key or feature column is missing from the source.
    """
    needed = [config.join_key, config.timestamp_field, *config.feature_names]
    missing = [column for column in needed if column not in dtypes]
    if missing:
        raise FeatureDefinitionError(
            f"model_input_table lacks columns {missing} that the feature store needs "
            f"(it has {sorted(dtypes)})"
        )
    entity = Entity(
        name=config.entity,
        join_keys=[config.join_key],
        value_type=ValueType.INT64
        if feast_type(config.join_key, dtypes[config.join_key]) is Int64
        else ValueType.STRING,
        description="A customer of the subscription service, keyed by customer_id.",
    )
    source = FileSource(
        name=SOURCE_NAME,
        path=source_path,
        timestamp_field=config.timestamp_field,
        description="feature_engineering output: one row per customer and monthly snapshot.",
    )
    # Pushed views read the same offline source (materialization and training sets are
    # unchanged) and also accept rows pushed to the online store between materializations.
    push = (
        PushSource(
            name=config.push_source,
            batch_source=source,
            description="Activity features recomputed by the Kafka consumer (docs/streaming.md).",
        )
        if config.pushed_views
        else None
    )
    specs = {spec.name: spec for spec in config.features}
    views = tuple(
        FeatureView(
            name=view,
            entities=[entity],
            ttl=timedelta(days=config.ttl_days),
            schema=[
                Field(
                    name=name,
                    dtype=feast_type(name, dtypes[name]),
                    description=specs[name].description,
                    tags={"kind": specs[name].kind},
                )
                for name in config.feature_names
                if config.view_of[name] == view
            ],
            source=push if view in config.pushed_views else source,
            online=True,
            description=f"Point-in-time customer features ({view}) from feature_engineering.",
        )
        for view in config.feature_views
    )
    service = FeatureService(
        name=config.feature_service,
        features=list(views),
        description="Every feature the churn model reads, in feature-list order per view.",
    )
    return FeatureDefinitions(
        entity=entity, source=source, views=views, service=service, push_source=push
    )

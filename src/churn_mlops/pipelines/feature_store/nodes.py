"""Nodes of the ``feature_store`` pipeline.

The definitions are built by a pure function; registering, materializing and reading training
sets go through the :class:`~churn_mlops.feature_store.repository.FeatureRepository` that the
``feature_repository`` catalog entry loads (the thin wrapper of the Feast SDK).
"""

from __future__ import annotations

import logging
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from churn_mlops.feature_store.config import FeatureStoreConfig, parse_feature_store_config
from churn_mlops.feature_store.definitions import FeatureDefinitions, build_feature_definitions
from churn_mlops.feature_store.repository import FeatureRepository, materialization_window

logger = logging.getLogger(__name__)


def validate_feature_store_parameters(
    parameters: dict[str, Any], features: list[dict[str, Any]]
) -> FeatureStoreConfig:
    """Validate ``params:feature_store`` against the feature list (every feature in one view)."""
    return parse_feature_store_config(parameters, features)


def define_feature_views(
    model_input_table: pd.DataFrame,
    config: FeatureStoreConfig,
    feature_repository: FeatureRepository,
) -> FeatureDefinitions:
    """Entity, feature views and feature service over ``model_input_table``.

    The Feast type of each feature is the dtype of its column, so values reach the training
    set and the online store unconverted.
    """
    return build_feature_definitions(
        config, model_input_table.dtypes.to_dict(), feature_repository.source_path
    )


def register_feature_views(
    feature_repository: FeatureRepository, definitions: FeatureDefinitions
) -> dict[str, Any]:
    """Apply the definitions to the Feast registry.

    Returns:
        The registration record: service, view names and fingerprints, online store type.
    """
    registration = feature_repository.apply(definitions)
    logger.info(
        "registered feature views %s in Feast project %s",
        [view["name"] for view in registration["feature_views"]],
        registration["project"],
    )
    return registration


def materialize_online_features(
    feature_repository: FeatureRepository,
    registration: dict[str, Any],
    model_input_table: pd.DataFrame,
    config: FeatureStoreConfig,
) -> dict[str, Any]:
    """Copy every customer's latest feature row to the online store.

    The window is ``[latest snapshot - ttl_days, latest snapshot]``: older rows could not
    answer an online lookup anyway.

    Returns:
        The materialization record (window, rows in it, customers, online store).
    """
    snapshots = model_input_table[config.timestamp_field]
    start, end = materialization_window(snapshots, config.ttl_days)
    window = feature_repository.materialize(start, end)
    in_window = model_input_table.loc[snapshots >= pd.Timestamp(start), config.join_key]
    record = {
        **window,
        "feature_views": [view["name"] for view in registration["feature_views"]],
        "online_store": registration["online_store"],
        "rows_in_window": int(in_window.size),
        "customers": int(in_window.nunique()),
        "latest_snapshot": pd.Timestamp(snapshots.max()).isoformat(),
    }
    logger.info(
        "materialized %d customers to the %s online store",
        record["customers"],
        record["online_store"],
    )
    return record


def build_training_set(
    feature_repository: FeatureRepository,
    registration: dict[str, Any],
    snapshot_spine: ir.Table,
    config: FeatureStoreConfig,
) -> pd.DataFrame:
    """The point-in-time training set: Feast ``get_historical_features`` on the snapshot spine.

    Each spine row (customer, snapshot, label) gets the features as of its snapshot from the
    DuckDB offline store; the result has the columns of ``model_input_table`` in its order
    (keys, label, features in contract order) and one row per spine row.
    """
    spine = snapshot_spine.to_pandas()
    frame = feature_repository.historical_features(spine, timestamp_field=config.timestamp_field)
    keys = [config.join_key, config.timestamp_field]
    others = [c for c in spine.columns if c not in keys]
    ordered = frame[[*keys, *others, *config.feature_names]].astype(
        # Ibis hands the spine over in microseconds; model_input_table loads in nanoseconds.
        {config.timestamp_field: "datetime64[ns]"}
    )
    return ordered.sort_values(keys, kind="stable").reset_index(drop=True)

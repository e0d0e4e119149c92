"""Column names and the champion's feature contract, shared by the monitoring nodes."""

from __future__ import annotations

from typing import Any

from churn_mlops.contracts.features import FeatureSpec, parse_feature_list

SCORE = "score"
LABEL = "label"
TIMESTAMP = "timestamp"
PERIOD = "period"
IN_WINDOW = "in_window"
VERSION = "model_version"
CUSTOMER = "customer_id"
REQUEST = "request_id"
FEATURE_PREFIX = "features."


def champion_features(champion: dict[str, Any]) -> list[FeatureSpec]:
    """The champion's feature contract (``model_metadata.json`` ``features``)."""
    return parse_feature_list(champion["model_metadata"]["features"])

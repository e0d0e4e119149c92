"""``model_metadata.json``: identity, decision threshold, metrics and the feature contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from churn_mlops.contracts.feature_store import FeatureStoreRequirement
from churn_mlops.contracts.features import FeatureSpec, reject_duplicates


class ModelMetadata(BaseModel):
    """``model_metadata.json`` of a registered model version and of a serving bundle.

    Top-level keys this class does not name (``estimator``, ``score``, ...) are kept out of the
    model rather than refused, so that a newer exporter may add information; the feature
    entries themselves are strict (:class:`FeatureSpec`).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, protected_namespaces=())

    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    run_id: str | None = None
    threshold: float = Field(ge=0.0, le=1.0)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    features: tuple[FeatureSpec, ...] = Field(min_length=1)
    feature_store: FeatureStoreRequirement | None = Field(
        default=None,
        description="the Feast feature service and views serving these features by customer id;"
        " None when the features are not published in a feature store",
    )

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # The registry hands out integers; the contract writes them as strings.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _unique_names(self) -> ModelMetadata:
        reject_duplicates("features", [f.name for f in self.features])
        if self.feature_store is not None:
            served = set(self.feature_store.feature_names)
            missing = [name for name in self.feature_names if name not in served]
            extra = sorted(served - set(self.feature_names))
            if missing or extra:
                raise ValueError(
                    f"feature_store.feature_views must serve exactly the model's features:"
                    f" missing {missing}, not model features {extra}"
                )
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in metadata order."""
        return tuple(f.name for f in self.features)

"""The feature contract: every model input's name, kind, categories and bounds.

Declared once in ``conf/base/parameters_feature_engineering.yml`` (``features``), validated by
:func:`parse_feature_list`, written into ``model_metadata.json`` by evaluation and read back
by serving and monitoring: all of them use :class:`FeatureSpec`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from churn_mlops.contracts.errors import ContractError, format_validation_error


class FeatureSpec(BaseModel):
    """One model feature: the contract that training, serving and monitoring rely on.

    Attributes:
        name: Column name in ``model_input_table``.
        kind: ``numeric`` or ``categorical``.
        description: One line for humans (model card, API docs).
        categories: Allowed values of a categorical feature.
        min: Optional lower bound of a numeric feature (requests outside are refused).
        max: Optional upper bound of a numeric feature.
        nullable: The feature may be missing; the model's imputer fills it.
        observed_min: Smallest training value (written into the metadata by evaluation).
        observed_max: Largest training value (written into the metadata by evaluation).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical"]
    description: str = ""
    categories: list[str] | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    observed_min: float | None = None
    observed_max: float | None = None

    @model_validator(mode="after")
    def _kind_specific_fields(self) -> FeatureSpec:
        if self.kind == "categorical":
            if not self.categories:
                raise ValueError(f"categorical feature {self.name!r} needs a list of categories")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(
                    f"categorical feature {self.name!r} lists a category twice: {self.categories}"
                )
            if self.min is not None or self.max is not None:
                raise ValueError(f"categorical feature {self.name!r} cannot have min/max")
        else:
            if self.categories is not None:
                raise ValueError(f"numeric feature {self.name!r} cannot have categories")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(
                    f"numeric feature {self.name!r}: min ({self.min}) is above max ({self.max})"
                )
        return self


def reject_duplicates(where: str, names: Sequence[str]) -> None:
    """Raise ``ValueError`` naming every name that ``names`` lists more than once."""
    duplicated = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicated:
        raise ValueError(f"{where} lists {duplicated} more than once")


class _FeatureList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    features: list[FeatureSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> _FeatureList:
        reject_duplicates("features", [spec.name for spec in self.features])
        return self


def parse_feature_list(features: Sequence[dict[str, Any] | FeatureSpec]) -> list[FeatureSpec]:
    """Validate a feature list (the ``feature_engineering.features`` parameter or metadata).

    Args:
        features: The list as it appears in the parameters or in ``model_metadata.json``.

    Returns:
        One validated :class:`FeatureSpec` per feature, in contract order.

    Raises:
        ContractError: An entry breaks the contract or a name is repeated; the message names
            the entry (``features[i].key``) and the problem.
    """
    try:
        return _FeatureList.model_validate({"features": list(features)}).features
    except ValidationError as exc:
        raise ContractError(
            f"invalid feature list: {format_validation_error(exc, show_input=True)}"
        ) from exc

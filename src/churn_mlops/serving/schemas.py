"""Request and response bodies; the request models are generated from the model's feature schema.

A row model has one field per feature of ``model_metadata.json``: numeric features are strict
finite numbers within the feature's ``min``/``max`` (NaN, Infinity, strings and booleans are
refused), categorical features are one of the allowed categories (or any short string when the
unknown-category policy is ``ignore``), and unknown fields are refused. The models are rebuilt
on every (re)load, so a bundle with another schema gets its own validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    create_model,
)

from churn_mlops.contracts.features import FeatureSpec
from churn_mlops.contracts.metadata import ModelMetadata

MAX_TEXT_LENGTH = 128
"""Longest accepted string value (categories, customer and request ids)."""

MAX_INTEGER_ID = 2**53 - 1
"""Largest integer customer id. Ids are int64 downstream, and 2**53 - 1 is the largest integer
every JSON client (JavaScript, any parser reading numbers as doubles) carries exactly, so the
schema and every client agree on which ids are valid; send larger ids as strings."""


def _integral_number(value: Any) -> Any:
    # JSON Schema's "integer" includes 2864.0, so the server accepts it too (as 2864); strings
    # and booleans stay what they are and fail the strict integer check.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


CustomerId = (
    Annotated[StrictInt, Field(ge=0, le=MAX_INTEGER_ID), BeforeValidator(_integral_number)]
    | Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH)]
)
Label = Annotated[StrictInt, Field(ge=0, le=1), BeforeValidator(_integral_number)]
RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"^[A-Za-z0-9._:-]+$")
]


def _feature_field(
    spec: FeatureSpec, *, unknown_category: str, max_abs_value: float
) -> tuple[Any, Any]:
    if spec.kind == "numeric":
        # Every feature gets a finite bound: past it, float32 trees and linear terms overflow.
        low = -max_abs_value if spec.min is None else max(spec.min, -max_abs_value)
        high = max_abs_value if spec.max is None else min(spec.max, max_abs_value)
        annotation: Any = Annotated[
            float,
            Field(
                strict=True,
                allow_inf_nan=False,
                ge=low,
                le=high,
                description=spec.description or None,
            ),
        ]
    elif unknown_category == "reject":
        annotation = Literal[tuple(spec.categories or ())]
    else:
        annotation = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH)]
    if spec.nullable:
        return annotation | None, Field(default=None, description=spec.description or None)
    return annotation, Field(..., description=spec.description or None)


@dataclass(frozen=True)
class RequestSchemas:
    """The request models generated for one loaded model."""

    row: type[BaseModel]
    predict: type[BaseModel]
    explain: type[BaseModel]


def build_request_schemas(
    metadata: ModelMetadata,
    *,
    unknown_category: Literal["reject", "ignore"],
    max_predict_rows: int,
    max_explain_rows: int,
    max_abs_value: float = 1e12,
) -> RequestSchemas:
    """Generate the row, predict and explain request models from the feature schema.

    Args:
        metadata: The bundle's metadata (feature names, kinds, ranges, categories).
        unknown_category: ``"reject"``: a category outside the schema is a 422; ``"ignore"``:
            it is accepted and encoded like the Pipeline does (an all-zero one-hot block).
        max_predict_rows: Row cap of ``/v1/predict``.
        max_explain_rows: Row cap of ``/v1/explain``.
        max_abs_value: Bound of numeric features whose ``min`` or ``max`` is open.
    """
    strict = ConfigDict(extra="forbid", allow_inf_nan=False)
    fields: dict[str, Any] = {
        spec.name: _feature_field(
            spec, unknown_category=unknown_category, max_abs_value=max_abs_value
        )
        for spec in metadata.features
    }
    if "customer_id" not in fields:
        fields["customer_id"] = (
            CustomerId | None,
            Field(default=None, description="optional key, copied to the prediction log"),
        )
    row = create_model("FeatureRow", __config__=strict, **fields)
    n_features = len(metadata.features)
    predict = create_model(
        "PredictRequest",
        __config__=strict,
        rows=(list[row], Field(min_length=1, max_length=max_predict_rows)),  # type: ignore[valid-type]
    )
    explain = create_model(
        "ExplainRequest",
        __config__=strict,
        rows=(list[row], Field(min_length=1, max_length=max_explain_rows)),  # type: ignore[valid-type]
        top_k=(
            Annotated[StrictInt, Field(ge=1, le=n_features), BeforeValidator(_integral_number)]
            | None,
            Field(default=None, description="contributions per row"),
        ),
    )
    return RequestSchemas(row=row, predict=predict, explain=explain)


UNKNOWN_FIELD = "<unknown field>"
"""Stands for a field name the caller invented: names of unknown fields are never echoed."""


def clean_error_list(
    errors: Sequence[Mapping[str, Any]], *, prefix: tuple[str, ...] = (), limit: int = 20
) -> list[dict[str, Any]]:
    """Validation errors as ``{loc, msg, type}``: field paths, never the caller's values.

    At most ``limit`` errors are listed (a last entry says how many more there were), so a
    small body can't make a large answer; an unknown field's name (caller data) is replaced by
    :data:`UNKNOWN_FIELD`.
    """
    cleaned: list[dict[str, Any]] = []
    for err in errors[:limit]:
        loc: list[Any] = [
            p if isinstance(p, int) else str(p)[:MAX_TEXT_LENGTH] for p in err.get("loc", ())
        ]
        kind = str(err.get("type", ""))
        if kind == "extra_forbidden" and loc:
            loc[-1] = UNKNOWN_FIELD
        cleaned.append({"loc": [*prefix, *loc], "msg": str(err.get("msg", "")), "type": kind})
    if len(errors) > limit:
        cleaned.append(
            {
                "loc": list(prefix) or ["body"],
                "msg": f"{len(errors) - limit} more errors not listed",
                "type": "too_many_errors",
            }
        )
    return cleaned


def clean_errors(
    exc: ValidationError, *, prefix: tuple[str, ...] = ("body",), limit: int = 20
) -> list[dict[str, Any]]:
    """:func:`clean_error_list` of a pydantic ``ValidationError``."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    return clean_error_list(errors, prefix=prefix, limit=limit)


# --------------------------------------------------------------------------------------------
# static bodies (documentation of the responses, feedback and admin requests)
# --------------------------------------------------------------------------------------------


class Prediction(BaseModel):
    """The score of one row."""

    request_id: str = Field(description="id of this prediction; send it back with feedback")
    customer_id: int | str | None = None
    probability: float = Field(description="churn probability")
    label: int = Field(description="1 when probability >= the model's threshold")
    model_version: str


class PredictResponse(BaseModel):
    """Body of ``POST /v1/predict``."""

    model_config = ConfigDict(protected_namespaces=())

    request_id: str
    model_name: str
    model_version: str
    threshold: float
    predictions: list[Prediction]


class FeatureContribution(BaseModel):
    """One feature's contribution to a row's log-odds."""

    feature: str
    value: float | str | None
    contribution: float


class RowExplanation(BaseModel):
    """Additive explanation of one row in log-odds: ``base_value + sum(all contributions)``."""

    request_id: str
    probability: float
    base_value: float
    contributions: list[FeatureContribution]


class ExplainResponse(BaseModel):
    """Body of ``POST /v1/explain``."""

    model_config = ConfigDict(protected_namespaces=())

    request_id: str
    model_version: str
    explanations: list[RowExplanation]


class FeedbackByRequest(BaseModel):
    """A label for one earlier prediction, by its ``request_id``."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId
    label: Label


class FeedbackByCustomer(BaseModel):
    """A label for a customer, by ``customer_id`` (joined to that customer's predictions)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    label: Label


FeedbackItem = FeedbackByRequest | FeedbackByCustomer
"""A label that arrived after the prediction, keyed by request id or by customer id."""


def _items_are_one_of(schema: dict[str, Any]) -> None:
    # The two item kinds exclude each other (each forbids the other's key): oneOf, not anyOf.
    items = schema.get("items", {})
    if "anyOf" in items:
        items["oneOf"] = items.pop("anyOf")


class FeedbackRequest(BaseModel):
    """Body of ``POST /v1/feedback``."""

    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(
        min_length=1, max_length=10_000, json_schema_extra=_items_are_one_of
    )


class FeedbackResponse(BaseModel):
    """Answer of ``POST /v1/feedback``."""

    accepted: int


class ReloadRequest(BaseModel):
    """Body of ``POST /v1/admin/reload`` (empty: reload ``CHURN_MODEL_DIR``)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_dir: str | None = Field(default=None, max_length=4096)


class ReloadStatus(BaseModel):
    """State of the last hot reload."""

    model_config = ConfigDict(protected_namespaces=())

    state: Literal["idle", "loading", "succeeded", "failed"]
    model_version: str | None = None
    requested_dir: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class ModelInfo(BaseModel):
    """Body of ``GET /v1/model``."""

    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str
    run_id: str | None
    threshold: float
    metrics: dict[str, float | None]
    features: list[dict[str, Any]]
    predictor: str = Field(description="explanation method: xgboost or logistic_regression")
    runtime: str = Field(description="the model runtime (onnxruntime)")
    loaded_at: str


class HealthStatus(BaseModel):
    """Body of the health probes."""

    model_config = ConfigDict(protected_namespaces=())

    status: str
    model_version: str | None = None

"""Request and response bodies; the request models are generated from the model's feature schema.

A row model has one field per feature of ``model_metadata.json``: numeric features are strict
finite numbers within the feature's ``min``/``max`` (NaN, Infinity, strings and booleans are
refused), categorical features are one of the allowed categories (or any short string when the
unknown-category policy is ``ignore``), and unknown fields are refused. The models are rebuilt
on every (re)load, so a bundle with another schema gets its own validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)

from churn_mlops.contracts.features import FeatureSpec
from churn_mlops.contracts.metadata import ModelMetadata

MAX_TEXT_LENGTH = 128
"""Longest accepted string value (categories, customer and request ids)."""

CustomerId = (
    Annotated[StrictInt, Field(ge=0)]
    | Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH)]
)
RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_TEXT_LENGTH, pattern=r"^[A-Za-z0-9._:-]+$")
]


def _feature_field(spec: FeatureSpec, *, unknown_category: str) -> tuple[Any, Any]:
    if spec.kind == "numeric":
        annotation: Any = Annotated[
            float,
            Field(
                strict=True,
                allow_inf_nan=False,
                ge=spec.min,
                le=spec.max,
                description=spec.description or None,
            ),
        ]
    elif unknown_category == "reject":
        annotation = Literal[tuple(spec.categories or ())]  # type: ignore[valid-type]
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
) -> RequestSchemas:
    """Generate the row, predict and explain request models from the feature schema.

    Args:
        metadata: The bundle's metadata (feature names, kinds, ranges, categories).
        unknown_category: ``"reject"``: a category outside the schema is a 422; ``"ignore"``:
            it is accepted and encoded like the Pipeline does (an all-zero one-hot block).
        max_predict_rows: Row cap of ``/v1/predict``.
        max_explain_rows: Row cap of ``/v1/explain``.
    """
    strict = ConfigDict(extra="forbid", allow_inf_nan=False)
    fields: dict[str, Any] = {
        spec.name: _feature_field(spec, unknown_category=unknown_category)
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
            StrictInt | None,
            Field(default=None, ge=1, le=n_features, description="contributions per row"),
        ),
    )
    return RequestSchemas(row=row, predict=predict, explain=explain)


def clean_errors(exc: ValidationError, *, prefix: tuple[str, ...] = ("body",)) -> list[dict]:
    """Validation errors as ``{loc, msg, type}``: field paths, never the caller's values."""
    cleaned = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = [p if isinstance(p, int) else str(p)[:MAX_TEXT_LENGTH] for p in err["loc"]]
        cleaned.append({"loc": [*prefix, *loc], "msg": err["msg"], "type": err["type"]})
    return cleaned


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


class FeedbackItem(BaseModel):
    """A label that arrived after the prediction, keyed by request id or by customer id."""

    model_config = ConfigDict(extra="forbid")

    request_id: RequestId | None = None
    customer_id: CustomerId | None = None
    label: Literal[0, 1]

    @model_validator(mode="after")
    def _exactly_one_key(self) -> FeedbackItem:
        if (self.request_id is None) == (self.customer_id is None):
            raise ValueError("give exactly one of request_id and customer_id")
        return self


class FeedbackRequest(BaseModel):
    """Body of ``POST /v1/feedback``."""

    model_config = ConfigDict(extra="forbid")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


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
    predictor: str
    loaded_at: str


class HealthStatus(BaseModel):
    """Body of the health probes."""

    model_config = ConfigDict(protected_namespaces=())

    status: str
    model_version: str | None = None

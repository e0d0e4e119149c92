"""``POST /v1/customers/predict`` and ``/v1/customers/explain``: score customers by id.

The features come from the online store of the Feast feature repository named by
``CHURN_FEATURE_REPO`` (materialized by ``kedro run --pipeline feature_store``); scoring goes
through the same predictor object as ``/v1/predict``. Each customer gets its own result: an
unknown id is a ``not_found`` row, not a failed batch, and a row older than
``CHURN_FEATURE_MAX_AGE_S`` is flagged ``stale`` (and counted in ``/metrics``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from churn_mlops.feature_store.repository import FeatureRepository, OnlineFeatures
from churn_mlops.serving.api.responses import SCORING, Responses
from churn_mlops.serving.deps import BEARER_SECURITY
from churn_mlops.serving.model_store import LoadedModel
from churn_mlops.serving.prediction_log import utc_now_iso
from churn_mlops.serving.scoring import (
    INLINE_ROWS,
    check_caller,
    request_id_for,
    reserve_rows,
    row_ids,
    score_rows,
    serving_model,
    validate_body,
)
from churn_mlops.serving.security import SCOPE_PREDICT
from churn_mlops.serving.settings import ServingSettings
from churn_mlops.serving.state import AppState

logger = logging.getLogger(__name__)

router = APIRouter(tags=["customers"])

CUSTOMER_PATHS = ("/v1/customers/predict", "/v1/customers/explain")
"""The routes of this module; documented in OpenAPI only when a feature store is configured."""

CustomerId = Annotated[int, Field(ge=0, le=2**63 - 1)]

CUSTOMER_ERRORS: Responses = {
    **SCORING,
    503: {
        **SCORING[503],
        "description": "no model loaded yet, the server is at capacity (see Retry-After), or"
        " no feature store configured / readable",
    },
}


class CustomersRequest(BaseModel):
    """Customers to score, by id (the Feast entity key ``customer_id``)."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(min_length=1)


class CustomersExplainRequest(CustomersRequest):
    """Customers to explain; ``top_k`` contributions each (default ``CHURN_EXPLAIN_TOP_K``)."""

    top_k: int | None = Field(default=None, ge=1)


class Freshness(BaseModel):
    """Age of the online feature row a result was computed from."""

    feature_timestamp: datetime = Field(description="snapshot time of the online row (UTC)")
    feature_age_s: float = Field(description="seconds from feature_timestamp to the answer")
    stale: bool = Field(description="feature_age_s is above CHURN_FEATURE_MAX_AGE_S")


class CustomerPrediction(BaseModel):
    """One customer's result: a prediction, or ``status: not_found``."""

    customer_id: int
    status: Literal["found", "not_found"]
    request_id: str | None = None
    probability: float | None = None
    label: int | None = None
    model_version: str
    freshness: Freshness | None = None


class CustomersPredictResponse(BaseModel):
    """Answer of ``POST /v1/customers/predict``."""

    request_id: str
    model_name: str
    model_version: str
    threshold: float
    online_store: str
    results: list[CustomerPrediction]


class CustomerContribution(BaseModel):
    """SHAP contribution (log-odds) of one feature."""

    feature: str
    value: Any
    contribution: float


class CustomerExplanation(CustomerPrediction):
    """One customer's explanation (``contributions`` empty when not found)."""

    base_value: float | None = None
    contributions: list[CustomerContribution] = Field(default_factory=list)


class CustomersExplainResponse(BaseModel):
    """Answer of ``POST /v1/customers/explain``."""

    request_id: str
    model_name: str
    model_version: str
    online_store: str
    results: list[CustomerExplanation]


def customer_features(request: Request) -> FeatureRepository:
    """The app's feature repository (opened once, on first use or at start-up).

    Raises:
        HTTPException: 503 when ``CHURN_FEATURE_REPO`` is not set.
    """
    repository = getattr(request.app.state, "customer_features", None)
    if not isinstance(repository, FeatureRepository):
        raise HTTPException(
            status_code=503,
            detail="scoring by customer id needs a feature store: set CHURN_FEATURE_REPO",
        )
    return repository


def open_customer_features(settings: ServingSettings) -> FeatureRepository | None:
    """The feature repository named by the settings, or ``None`` (no I/O until first use)."""
    if settings.feature_repo is None:
        return None
    return FeatureRepository(settings.feature_repo, fs_yaml_file=settings.feature_store_yaml)


async def _lookup(state: AppState, repository: FeatureRepository, ids: list[int]) -> OnlineFeatures:
    """Online rows of the ids.

    Up to ``INLINE_ROWS`` ids go through the app's lookup batcher: the ids of every by-id
    request that reached it during one event-loop turn are read in one ``online_read`` per
    view, on the loop (asynchronously for a store with async reads, Redis; in place for
    SQLite, a fraction of a millisecond). Larger requests are read alone: asynchronously,
    or on the app's few lookup threads so that they never stall the loop.

    Raises:
        HTTPException: 503 when the store cannot be read (the cause is logged).
    """
    try:
        asynchronous = repository.native_async_reads
        if len(ids) <= INLINE_ROWS:
            read = repository.online_features_async if asynchronous else repository.online_features
            features: OnlineFeatures = await state.lookup_batcher.call(read, ids)
            return features
        if asynchronous:
            return await repository.online_features_async(ids)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(state.lookup_executor, repository.online_features, ids)
    except Exception as exc:
        logger.error("online feature lookup failed: %s", exc, exc_info=exc)
        raise HTTPException(
            status_code=503,
            detail=f"the online feature store cannot be read ({type(exc).__name__})",
        ) from None


def _model_rows(model: LoadedModel, online: OnlineFeatures) -> list[int]:
    """Indexes of the customers found; checks the store serves every model feature."""
    found = [i for i, row in enumerate(online.rows) if row is not None]
    first = next((row for row in online.rows if row is not None), None)
    if first is not None:
        missing = [name for name in model.feature_names if name not in first]
        if missing:
            raise HTTPException(
                status_code=503,
                detail=f"the feature store does not serve features {missing} that model "
                f"version {model.version} needs; re-run the feature_store pipeline",
            )
    return found


def _check_count(ids: list[int], limit: int) -> None:
    if len(ids) > limit:
        raise HTTPException(
            status_code=422,
            detail=[
                {
                    "loc": ["body", "customer_ids"],
                    "msg": f"at most {limit} customer ids per request",
                    "type": "too_long",
                }
            ],
        )


@dataclass(frozen=True)
class _Found:
    """The online rows of one request: who was found, their model rows, when it was read."""

    online: OnlineFeatures
    found: list[int]
    rows: list[dict[str, Any]]
    now: datetime


async def _read_rows(
    state: AppState, repository: FeatureRepository, model: LoadedModel, ids: list[int]
) -> _Found:
    online = await _lookup(state, repository, ids)
    found = _model_rows(model, online)
    rows = [_ordered(model, online.rows[i]) for i in found]
    return _Found(online=online, found=found, rows=rows, now=datetime.now(timezone.utc))


def _freshness(moment: datetime | None, now: datetime, max_age_s: float) -> dict[str, Any] | None:
    if moment is None:
        return None
    age = (now - moment).total_seconds()
    return {"feature_timestamp": moment.isoformat(), "feature_age_s": age, "stale": age > max_age_s}


def _openapi_extra(schema: type[BaseModel]) -> dict[str, Any]:
    """Security and request body of a route that reads and validates its body itself."""
    return {
        "security": BEARER_SECURITY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema.model_json_schema()}},
        },
    }


@router.post(
    "/v1/customers/predict",
    response_model=CustomersPredictResponse,
    responses=CUSTOMER_ERRORS,
    openapi_extra=_openapi_extra(CustomersRequest),
    summary="Score customers by id (features from the online store)",
)
async def predict_customers(request: Request) -> Response:
    """Probability, label, model version and feature freshness per customer id.

    Found customers are appended to the prediction log like ``/v1/predict`` rows.
    """
    state: AppState = request.app.state.churn
    check_caller(state, request, SCOPE_PREDICT)
    model = serving_model(state)
    ids = validate_body(state, CustomersRequest, await request.body()).customer_ids
    _check_count(ids, state.settings.max_predict_rows)
    repository = customer_features(request)
    reserve_rows(state, len(ids))
    try:
        read = await _read_rows(state, repository, model, ids)
        probabilities: list[float] = []
        if read.rows:  # nobody found: nothing to score
            inline = len(read.rows) <= INLINE_ROWS
            probabilities = (await score_rows(state, model, read.rows, inline=inline)).tolist()
    finally:
        state.admission.release_rows(len(ids))
    request_id = request_id_for(request)
    found = read.found
    rows = [{"customer_id": ids[i], **row} for i, row in zip(found, read.rows, strict=True)]
    labels = [1 if p >= model.threshold else 0 for p in probabilities]
    prediction_ids = row_ids(request_id, len(rows))
    max_age = state.settings.feature_max_age_s
    results = [_not_found(cid, model.version) for cid in ids]
    stale = 0
    ages: list[float] = []
    for k, i in enumerate(found):
        freshness = _freshness(read.online.event_times[i], read.now, max_age)
        if freshness is not None:
            stale += freshness["stale"]
            ages.append(freshness["feature_age_s"])
        results[i] = {
            "customer_id": ids[i],
            "status": "found",
            "request_id": prediction_ids[k],
            "probability": probabilities[k],
            "label": labels[k],
            "model_version": model.version,
            "freshness": freshness,
        }
    if rows:
        if state.predictions is not None:
            state.predictions.write_predictions(
                utc_now_iso(), model.version, prediction_ids, rows, probabilities, labels
            )
        state.metrics.observe_predictions(model.version, probabilities, labels)
        model.drift.observe(rows)
    state.metrics.observe_customer_lookups(len(found), len(ids) - len(found), stale, ages)
    content = orjson.dumps(
        {
            "request_id": request_id,
            "model_name": model.metadata.model_name,
            "model_version": model.version,
            "threshold": model.threshold,
            "online_store": repository.online_store_type,
            "results": results,
        }
    )
    return Response(content, media_type="application/json", headers={"x-request-id": request_id})


@router.post(
    "/v1/customers/explain",
    response_model=CustomersExplainResponse,
    responses=CUSTOMER_ERRORS,
    openapi_extra=_openapi_extra(CustomersExplainRequest),
    summary="Explain customers by id (features from the online store)",
)
async def explain_customers(request: Request) -> Response:
    """Top-k SHAP contributions (log-odds) per customer, with probability and freshness."""
    state: AppState = request.app.state.churn
    check_caller(state, request, SCOPE_PREDICT)
    model = serving_model(state)
    body = validate_body(state, CustomersExplainRequest, await request.body())
    ids = body.customer_ids
    _check_count(ids, state.settings.max_explain_rows)
    repository = customer_features(request)
    top_k = body.top_k or min(state.settings.explain_top_k, len(model.feature_names))
    reserve_rows(state, len(ids))
    try:
        read = await _read_rows(state, repository, model, ids)
        explanations = (
            await run_in_threadpool(model.predictor.explain, read.rows, top_k) if read.rows else []
        )
    finally:
        state.admission.release_rows(len(ids))
    request_id = request_id_for(request)
    prediction_ids = row_ids(request_id, len(read.rows))
    max_age = state.settings.feature_max_age_s
    results = [
        {**_not_found(cid, model.version), "base_value": None, "contributions": []} for cid in ids
    ]
    for k, (i, e) in enumerate(zip(read.found, explanations, strict=True)):
        results[i] = {
            "customer_id": ids[i],
            "status": "found",
            "request_id": prediction_ids[k],
            "probability": e.probability,
            "label": 1 if e.probability >= model.threshold else 0,
            "model_version": model.version,
            "freshness": _freshness(read.online.event_times[i], read.now, max_age),
            "base_value": e.base_value,
            "contributions": [
                {"feature": c.feature, "value": c.value, "contribution": c.contribution}
                for c in e.contributions
            ],
        }
    content = orjson.dumps(
        {
            "request_id": request_id,
            "model_name": model.metadata.model_name,
            "model_version": model.version,
            "online_store": repository.online_store_type,
            "results": results,
        }
    )
    return Response(content, media_type="application/json", headers={"x-request-id": request_id})


def _not_found(customer_id: int, version: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "status": "not_found",
        "request_id": None,
        "probability": None,
        "label": None,
        "model_version": version,
        "freshness": None,
    }


def _ordered(model: LoadedModel, row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise ValueError("_ordered: a found customer's online row is None")
    return {name: row[name] for name in model.feature_names}

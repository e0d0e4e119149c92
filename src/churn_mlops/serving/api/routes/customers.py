"""``POST /v1/customers/predict`` and ``/v1/customers/explain``: score customers by id.

The features come from the online store of the Feast feature repository named by
``CHURN_FEATURE_REPO`` (materialized by ``kedro run --pipeline feature_store``); scoring goes
through the same predictor object as ``/v1/predict``. Each customer gets its own result: an
unknown id is a ``not_found`` row, not a failed batch, and a row older than
``CHURN_FEATURE_MAX_AGE_S`` is flagged ``stale`` (and counted in ``/metrics``).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from churn_mlops.feature_store.repository import FeatureRepository, OnlineFeatures
from churn_mlops.serving.api.routes.predict import ERROR_RESPONSES
from churn_mlops.serving.deps import Scoring, parse_body, request_id_for
from churn_mlops.serving.model_store import LoadedModel
from churn_mlops.serving.prediction_log import utc_now_iso
from churn_mlops.serving.scoring import row_ids
from churn_mlops.serving.settings import ServingSettings

logger = logging.getLogger(__name__)

router = APIRouter(tags=["customers"])

CustomerId = Annotated[int, Field(ge=0, le=2**63 - 1)]

CUSTOMER_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    503: {"description": "no model loaded yet, or no feature store configured / registered"},
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


_open_lock = threading.Lock()


def customer_features(request: Request) -> FeatureRepository:
    """The app's feature repository (opened once, on first use or at start-up).

    Raises:
        HTTPException: 503 when ``CHURN_FEATURE_REPO`` is not set.
    """
    repository = getattr(request.app.state, "customer_features", None)
    if repository is None:
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


def _lookup(repository: FeatureRepository, ids: list[int]) -> OnlineFeatures:
    with _open_lock:  # the first call opens the store; Feast's registry cache is not locked
        repository.store  # noqa: B018 - opens it
    try:
        return repository.online_features(ids)
    except Exception as exc:
        logger.error("online feature lookup failed: %s", exc, exc_info=exc)
        raise HTTPException(
            status_code=503,
            detail=f"the online feature store cannot be read ({type(exc).__name__})",
        ) from None


def _model_rows(model: LoadedModel, online: OnlineFeatures) -> list[int]:
    """Indexes of the customers found; checks the store serves every model feature."""
    found = [i for i, row in enumerate(online.rows) if row is not None]
    if found:
        missing = [name for name in model.feature_names if name not in online.rows[found[0]]]
        if missing:
            raise HTTPException(
                status_code=503,
                detail=f"the feature store does not serve features {missing} that model "
                f"version {model.version} needs; re-run the feature_store pipeline",
            )
    return found


async def _fetch(
    request: Request, scoring_model: LoadedModel, body_ids: list[int], limit: int
) -> tuple[FeatureRepository, OnlineFeatures, list[int], datetime]:
    if len(body_ids) > limit:
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
    repository = customer_features(request)
    online = await run_in_threadpool(_lookup, repository, body_ids)
    return repository, online, _model_rows(scoring_model, online), datetime.now(timezone.utc)


def _freshness(moment: datetime | None, now: datetime, max_age_s: float) -> dict[str, Any] | None:
    if moment is None:
        return None
    age = (now - moment).total_seconds()
    return {"feature_timestamp": moment.isoformat(), "feature_age_s": age, "stale": age > max_age_s}


@router.post(
    "/v1/customers/predict",
    response_model=CustomersPredictResponse,
    responses=CUSTOMER_ERRORS,
    summary="Score customers by id (features from the online store)",
)
async def predict_customers(request: Request, scoring: Scoring) -> Response:
    """Probability, label, model version and feature freshness per customer id.

    Found customers are appended to the prediction log like ``/v1/predict`` rows.
    """
    state, model = scoring.state, scoring.model
    body = await parse_body(request, CustomersRequest)
    ids = body.customer_ids
    repository, online, found, now = await _fetch(
        request, model, ids, state.settings.max_predict_rows
    )
    request_id = request_id_for(request)
    rows = [{"customer_id": ids[i], **_ordered(model, online.rows[i])} for i in found]
    probabilities: list[float] = model.predictor.predict_proba(rows).tolist() if rows else []
    labels = [1 if p >= model.threshold else 0 for p in probabilities]
    prediction_ids = row_ids(request_id, len(rows))
    max_age = state.settings.feature_max_age_s
    results = [_not_found(cid, model.version) for cid in ids]
    stale = 0
    ages = []
    for k, i in enumerate(found):
        freshness = _freshness(online.event_times[i], now, max_age)
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
    responses={**CUSTOMER_ERRORS, 501: {"description": "the model has no fast explanation"}},
    summary="Explain customers by id (features from the online store)",
)
async def explain_customers(request: Request, scoring: Scoring) -> Response:
    """Top-k SHAP contributions (log-odds) per customer, with probability and freshness."""
    state, model = scoring.state, scoring.model
    body = await parse_body(request, CustomersExplainRequest)
    if not model.predictor.can_explain:
        raise HTTPException(
            status_code=501,
            detail=f"explanations are not available for the {model.predictor.kind} predictor",
        )
    ids = body.customer_ids
    repository, online, found, now = await _fetch(
        request, model, ids, state.settings.max_explain_rows
    )
    rows = [_ordered(model, online.rows[i]) for i in found]
    top_k = body.top_k or min(state.settings.explain_top_k, len(model.feature_names))
    explanations = await run_in_threadpool(model.predictor.explain, rows, top_k) if rows else []
    request_id = request_id_for(request)
    prediction_ids = row_ids(request_id, len(rows))
    max_age = state.settings.feature_max_age_s
    results = [
        {**_not_found(cid, model.version), "base_value": None, "contributions": []} for cid in ids
    ]
    for k, (i, e) in enumerate(zip(found, explanations, strict=True)):
        results[i] = {
            "customer_id": ids[i],
            "status": "found",
            "request_id": prediction_ids[k],
            "probability": e.probability,
            "label": 1 if e.probability >= model.threshold else 0,
            "model_version": model.version,
            "freshness": _freshness(online.event_times[i], now, max_age),
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
    assert row is not None
    return {name: row[name] for name in model.feature_names}

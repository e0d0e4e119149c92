"""``POST /v1/predict``: churn probability and label for 1..N feature rows.

The hot route: no FastAPI dependencies (the caller check and the model read are plain
calls), the body validated in one pass by the request model generated from the bundle's
feature schema, the rows of concurrent requests scored together (micro-batching, see
:mod:`churn_mlops.serving.batching`), the answer rendered with orjson.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from churn_mlops.serving.api.responses import SCORING
from churn_mlops.serving.deps import BEARER_SECURITY
from churn_mlops.serving.prediction_log import utc_now_iso
from churn_mlops.serving.schemas import PredictResponse
from churn_mlops.serving.scoring import (
    INLINE_BODY_BYTES,
    check_caller,
    off_loop,
    request_id_for,
    reserve_rows,
    row_ids,
    score_rows,
    serving_model,
    validate_body,
)
from churn_mlops.serving.security import SCOPE_PREDICT
from churn_mlops.serving.state import AppState

router = APIRouter(tags=["predict"])


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    responses=SCORING,
    openapi_extra={
        "security": BEARER_SECURITY,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
            },
        },
    },
    summary="Score feature rows",
)
async def predict(request: Request) -> Response:
    """Churn probability, label at the model's threshold, model version and an id per row.

    Every row is appended to the prediction log; ``request_id`` of a prediction is the key
    for ``POST /v1/feedback``.
    """
    state: AppState = request.app.state.churn
    check_caller(state, request, SCOPE_PREDICT)
    model = serving_model(state)
    body = await request.body()
    parsed = await off_loop(body, lambda: validate_body(state, model.schemas.predict, body))
    # Field values of a validated pydantic model live in its __dict__: the cheapest way to
    # get plain dicts (model_dump would copy them).
    rows: list[dict[str, Any]] = [row.__dict__ for row in parsed.rows]  # type: ignore[attr-defined]
    reserve_rows(state, len(rows))
    try:
        scores = await score_rows(state, model, rows, inline=len(body) <= INLINE_BODY_BYTES)
    finally:
        state.admission.release_rows(len(rows))
    request_id = request_id_for(request)
    version = model.version
    threshold = model.threshold
    probabilities: list[float] = scores.tolist()
    labels = [1 if p >= threshold else 0 for p in probabilities]
    ids = row_ids(request_id, len(rows))
    if state.predictions is not None:
        state.predictions.write_predictions(
            utc_now_iso(), version, ids, rows, probabilities, labels
        )
    state.metrics.observe_predictions(version, probabilities, labels)
    model.drift.observe(rows)
    content = orjson.dumps(
        {
            "request_id": request_id,
            "model_name": model.metadata.model_name,
            "model_version": version,
            "threshold": threshold,
            "predictions": [
                {
                    "request_id": rid,
                    "customer_id": row.get("customer_id"),
                    "probability": probability,
                    "label": label,
                    "model_version": version,
                }
                for rid, row, probability, label in zip(
                    ids, rows, probabilities, labels, strict=True
                )
            ],
        }
    )
    return Response(content, media_type="application/json", headers={"x-request-id": request_id})

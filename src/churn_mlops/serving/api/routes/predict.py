"""``POST /v1/predict``: churn probability and label for 1..N feature rows.

In production this path is answered by the fast lane (:mod:`churn_mlops.serving.lane`) with
the same code; this route documents it and serves it when ``CHURN_FAST_LANE=false``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from churn_mlops.serving.deps import BEARER_SECURITY, Scoring, request_id_for
from churn_mlops.serving.schemas import PredictResponse
from churn_mlops.serving.scoring import ScoringFailure, predict_payload

router = APIRouter(tags=["predict"])

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer token"},
    403: {"description": "token without the required scope"},
    413: {"description": "request body too large"},
    422: {"description": "invalid rows: field paths and messages, never the values sent"},
    503: {"description": "no model loaded yet"},
}


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    responses=ERROR_RESPONSES,
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
async def predict(request: Request, scoring: Scoring) -> Response:
    """Churn probability, label at the model's threshold, model version and an id per row.

    Every row is appended to the prediction log; ``request_id`` of a prediction is the key
    for ``POST /v1/feedback``.
    """
    request_id = request_id_for(request)
    body = await request.body()
    try:
        content = await predict_payload(scoring.state, scoring.model, body, request_id)
    except ScoringFailure as failure:
        return Response(
            failure.body(),
            status_code=failure.status,
            media_type="application/json",
            headers=failure.headers,
        )
    return Response(content, media_type="application/json", headers={"x-request-id": request_id})

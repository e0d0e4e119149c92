"""``POST /v1/explain``: top-k SHAP contributions (log-odds) per row."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from churn_mlops.serving.api.responses import SCORING
from churn_mlops.serving.deps import BEARER_SECURITY
from churn_mlops.serving.schemas import ExplainResponse
from churn_mlops.serving.scoring import (
    check_caller,
    request_id_for,
    reserve_rows,
    row_ids,
    serving_model,
    validate_body,
)
from churn_mlops.serving.security import SCOPE_PREDICT
from churn_mlops.serving.state import AppState

router = APIRouter(tags=["predict"])


@router.post(
    "/v1/explain",
    response_model=ExplainResponse,
    responses=SCORING,
    openapi_extra={
        "security": BEARER_SECURITY,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ExplainRequest"}}
            },
        },
    },
    summary="Explain feature rows",
)
async def explain(request: Request) -> Response:
    """Exact SHAP values (XGBoost's TreeSHAP, or linear SHAP for logistic regression), summed
    over each categorical feature's one-hot columns, largest absolute values first."""
    state: AppState = request.app.state.churn
    check_caller(state, request, SCOPE_PREDICT)
    model = serving_model(state)
    body = validate_body(state, model.schemas.explain, await request.body())
    rows: list[dict[str, Any]] = [row.__dict__ for row in body.rows]  # type: ignore[attr-defined]
    top_k = body.top_k or min(state.settings.explain_top_k, len(model.feature_names))  # type: ignore[attr-defined]
    reserve_rows(state, len(rows))
    try:
        explanations = await run_in_threadpool(model.predictor.explain, rows, top_k)
    finally:
        state.admission.release_rows(len(rows))
    request_id = request_id_for(request)
    content = orjson.dumps(
        {
            "request_id": request_id,
            "model_version": model.version,
            "explanations": [
                {
                    "request_id": rid,
                    "probability": e.probability,
                    "base_value": e.base_value,
                    "contributions": [
                        {"feature": c.feature, "value": c.value, "contribution": c.contribution}
                        for c in e.contributions
                    ],
                }
                for rid, e in zip(row_ids(request_id, len(rows)), explanations, strict=True)
            ],
        }
    )
    return Response(content, media_type="application/json", headers={"x-request-id": request_id})

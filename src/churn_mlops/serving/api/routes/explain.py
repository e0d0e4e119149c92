"""``POST /v1/explain``: top-k SHAP contributions (log-odds) per row."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from churn_mlops.serving.api.routes.predict import ERROR_RESPONSES
from churn_mlops.serving.deps import BEARER_SECURITY, Scoring, parse_body, request_id_for
from churn_mlops.serving.schemas import ExplainResponse
from churn_mlops.serving.scoring import row_ids

router = APIRouter(tags=["predict"])


@router.post(
    "/v1/explain",
    response_model=ExplainResponse,
    responses={**ERROR_RESPONSES, 501: {"description": "the model has no fast explanation"}},
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
async def explain(
    request: Request,
    scoring: Scoring,
) -> Response:
    """Exact SHAP values (TreeSHAP for XGBoost, linear SHAP for logistic regression), summed
    over each categorical feature's one-hot columns, largest absolute values first."""
    state, model = scoring.state, scoring.model
    body = await parse_body(request, model.schemas.explain)
    if not model.predictor.can_explain:
        raise HTTPException(
            status_code=501,
            detail=f"explanations are not available for the {model.predictor.kind} predictor",
        )
    rows: list[dict[str, Any]] = [row.__dict__ for row in body.rows]  # type: ignore[attr-defined]
    top_k = body.top_k or min(state.settings.explain_top_k, len(model.feature_names))  # type: ignore[attr-defined]
    explanations = await run_in_threadpool(model.predictor.explain, rows, top_k)
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

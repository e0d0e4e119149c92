"""``POST /v1/feedback``: labels that arrive after the prediction, by request or customer id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from churn_mlops.serving.api.responses import AUTHENTICATED_POST
from churn_mlops.serving.deps import AppStateDep, PredictCaller
from churn_mlops.serving.prediction_log import utc_now_iso
from churn_mlops.serving.schemas import FeedbackByRequest, FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["feedback"])


@router.post(
    "/v1/feedback",
    status_code=202,
    response_model=FeedbackResponse,
    responses=AUTHENTICATED_POST,
    summary="Record observed churn labels",
)
async def feedback(
    _caller: PredictCaller, body: FeedbackRequest, state: AppStateDep
) -> FeedbackResponse:
    """Append each label to the feedback log for the monitoring pipeline to join."""
    if state.feedback is None:
        raise HTTPException(status_code=503, detail="the feedback log is switched off")
    timestamp = utc_now_iso()
    records = []
    for item in body.feedback:
        record: dict[str, Any] = {"label": item.label, "timestamp": timestamp}
        if isinstance(item, FeedbackByRequest):
            record["request_id"] = item.request_id
        else:
            record["customer_id"] = item.customer_id
        records.append(record)
    state.feedback.write(records)
    state.feedback.flush()  # labels are rare and precious: write them now
    return FeedbackResponse(accepted=len(records))

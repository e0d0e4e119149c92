"""``GET /metrics``: the app's Prometheus registry in the text exposition format."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from churn_mlops.serving.api.responses import NOT_ALLOWED
from churn_mlops.serving.deps import AppStateDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **NOT_ALLOWED},
)
async def metrics(state: AppStateDep) -> Response:
    """Requests, latency, in-flight, scores, predictions, per-feature PSI, model info."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

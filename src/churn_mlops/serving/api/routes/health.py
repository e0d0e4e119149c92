"""Health probes: ``/health/live`` (the process answers) and ``/health/ready`` (model warmed)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from churn_mlops.serving.api.responses import NOT_ALLOWED
from churn_mlops.serving.deps import AppStateDep
from churn_mlops.serving.schemas import HealthStatus

router = APIRouter(tags=["health"])


@router.get(
    "/health/live",
    response_model=HealthStatus,
    response_model_exclude_none=True,
    responses=NOT_ALLOWED,
    summary="Liveness probe",
)
async def live() -> HealthStatus:
    """200 while the event loop answers."""
    return HealthStatus(status="alive")


@router.get(
    "/health/ready",
    response_model=HealthStatus,
    responses={
        503: {"model": HealthStatus, "description": "no model loaded and warmed yet"},
        **NOT_ALLOWED,
    },
    summary="Readiness probe",
)
async def ready(state: AppStateDep) -> JSONResponse:
    """200 once a model is loaded, compiled and warmed; 503 before."""
    model = state.store.current
    if model is None:
        return JSONResponse(status_code=503, content={"status": "not_ready"})
    return JSONResponse(content={"status": "ready", "model_version": model.version})

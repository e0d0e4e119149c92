"""``GET /v1/model``: name, version, threshold, metrics and feature schema of the serving model."""

from __future__ import annotations

from fastapi import APIRouter

from churn_mlops.serving.api.responses import AUTHENTICATED_GET
from churn_mlops.serving.deps import CurrentModel, PredictCaller
from churn_mlops.serving.schemas import ModelInfo

router = APIRouter(tags=["model"])


@router.get(
    "/v1/model",
    response_model=ModelInfo,
    responses=AUTHENTICATED_GET,
    summary="Describe the serving model",
)
async def model_info(_caller: PredictCaller, model: CurrentModel) -> ModelInfo:
    """What is serving now; the feature list is the request schema of ``/v1/predict``."""
    meta = model.metadata
    return ModelInfo(
        model_name=meta.model_name,
        model_version=meta.model_version,
        run_id=meta.run_id,
        threshold=meta.threshold,
        metrics=dict(meta.metrics),
        features=[f.model_dump(exclude_none=True) for f in meta.features],
        predictor=model.predictor.kind,
        runtime="onnxruntime",
        loaded_at=model.loaded_at,
    )

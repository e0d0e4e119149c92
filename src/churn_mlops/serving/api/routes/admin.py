"""``/v1/admin/reload``: load a newer bundle in the background and swap it in atomically."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from churn_mlops.serving.api.responses import AUTHENTICATED_GET, AUTHENTICATED_POST
from churn_mlops.serving.deps import AdminCaller, AppStateDep
from churn_mlops.serving.errors import BundleError, ReloadInProgressError, ReloadRootError
from churn_mlops.serving.schemas import ReloadRequest, ReloadStatus

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    status_code=202,
    response_model=ReloadStatus,
    responses={
        **AUTHENTICATED_POST,
        403: {"description": "the bundle folder is outside CHURN_RELOAD_ROOT"},
        404: {"description": "the bundle folder does not exist"},
        409: {"description": "a reload is already running"},
    },
    summary="Hot-reload a bundle",
)
async def reload_model(
    _caller: AdminCaller, state: AppStateDep, body: ReloadRequest | None = None
) -> ReloadStatus:
    """Start loading ``model_dir`` (default ``CHURN_MODEL_DIR``); poll ``GET`` for the result.

    The old model serves until the new one is loaded, compiled, checked and warmed; if any of
    that fails, it keeps serving and the status says why.
    """
    try:
        bundle_dir = state.store.resolve_reload_dir(body.model_dir if body else None)
        return state.store.start_reload(bundle_dir)
    except ReloadRootError as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    except BundleError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ReloadInProgressError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get(
    "/reload",
    response_model=ReloadStatus,
    responses=AUTHENTICATED_GET,
    summary="State of the last hot reload",
)
async def reload_status(_caller: AdminCaller, state: AppStateDep) -> ReloadStatus:
    """``idle``, ``loading``, ``succeeded`` (with the new version) or ``failed`` (with why)."""
    return state.store.reload_status

"""FastAPI dependencies as ``Annotated`` aliases: app state, the serving model, auth scopes.

All dependencies are ``async def``: FastAPI runs plain ``def`` dependencies on a thread pool.
The scoring routes use none of them (see :mod:`churn_mlops.serving.scoring`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from churn_mlops.serving.model_store import LoadedModel
from churn_mlops.serving.scoring import check_caller, serving_model
from churn_mlops.serving.security import SCOPE_ADMIN, SCOPE_PREDICT, Principal
from churn_mlops.serving.state import AppState

# Declares the scheme for the OpenAPI page; the checking is TokenVerifier's.
bearer_scheme = HTTPBearer(auto_error=False, description="JWT with scope 'predict' or 'admin'")


async def get_app_state(request: Request) -> AppState:
    """The state object of the app serving this request."""
    return cast(AppState, request.app.state.churn)


AppStateDep = Annotated[AppState, Depends(get_app_state)]


async def get_current_model(state: AppStateDep) -> LoadedModel:
    """The model serving now, read once for the whole request (503 while none is loaded)."""
    return serving_model(state)


CurrentModel = Annotated[LoadedModel, Depends(get_current_model)]


def _authorizer(scope: str) -> Callable[..., Awaitable[Principal | None]]:
    async def authorize(
        request: Request,
        state: AppStateDep,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal | None:
        return check_caller(state, request, scope)

    authorize.__name__ = f"require_{scope}_scope"
    return authorize


PredictCaller = Annotated[Principal | None, Depends(_authorizer(SCOPE_PREDICT))]
AdminCaller = Annotated[Principal | None, Depends(_authorizer(SCOPE_ADMIN))]

BEARER_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
"""OpenAPI security requirement for routes that check the token without ``bearer_scheme``."""

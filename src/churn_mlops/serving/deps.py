"""FastAPI dependencies as ``Annotated`` aliases: app state, the serving model, auth scopes.

All dependencies are ``async def``: FastAPI runs plain ``def`` dependencies on a thread pool,
which would cost more than the prediction itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from churn_mlops.serving.model_store import LoadedModel
from churn_mlops.serving.schemas import clean_errors
from churn_mlops.serving.scoring import auth_failure, choose_request_id
from churn_mlops.serving.security import SCOPE_ADMIN, SCOPE_PREDICT, AuthError, Principal
from churn_mlops.serving.state import AppState

ModelT = TypeVar("ModelT", bound=BaseModel)

# Declares the scheme for the OpenAPI page; the checking is TokenVerifier's.
bearer_scheme = HTTPBearer(auto_error=False, description="JWT with scope 'predict' or 'admin'")


async def get_app_state(request: Request) -> AppState:
    """The state object of the app serving this request."""
    state: AppState = request.app.state.churn
    return state


AppStateDep = Annotated[AppState, Depends(get_app_state)]


async def get_current_model(state: AppStateDep) -> LoadedModel:
    """The model serving now, read once for the whole request.

    Raises:
        HTTPException: 503 while no model is loaded.
    """
    model = state.store.current
    if model is None:
        raise HTTPException(status_code=503, detail="no model is loaded yet")
    return model


CurrentModel = Annotated[LoadedModel, Depends(get_current_model)]


def _auth_exception(exc: AuthError) -> HTTPException:
    failure = auth_failure(exc)
    return HTTPException(status_code=failure.status, detail=failure.detail, headers=failure.headers)


def _authorizer(scope: str) -> Callable[..., Awaitable[Principal | None]]:
    async def authorize(
        request: Request,
        state: AppStateDep,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal | None:
        try:
            return state.verifier.authorize(request.headers.get("authorization"), scope)
        except AuthError as exc:
            raise _auth_exception(exc) from None

    authorize.__name__ = f"require_{scope}_scope"
    return authorize


PredictCaller = Annotated[Principal | None, Depends(_authorizer(SCOPE_PREDICT))]
AdminCaller = Annotated[Principal | None, Depends(_authorizer(SCOPE_ADMIN))]


@dataclass(frozen=True)
class ScoringContext:
    """What a scoring route needs: app state, the model serving now, the verified caller."""

    state: AppState
    model: LoadedModel
    caller: Principal | None


async def get_scoring_context(request: Request) -> ScoringContext:
    """Auth (``predict`` scope) and the serving model in ONE dependency.

    The scoring routes are the hot path: each dependency FastAPI resolves costs tens of
    microseconds, so this one does the work of ``PredictCaller`` and ``CurrentModel`` itself.

    Raises:
        HTTPException: 401/403 for a refused token, 503 while no model is loaded.
    """
    state: AppState = request.app.state.churn
    try:
        caller = state.verifier.authorize(request.headers.get("authorization"), SCOPE_PREDICT)
    except AuthError as exc:
        raise _auth_exception(exc) from None
    model = state.store.current
    if model is None:
        raise HTTPException(status_code=503, detail="no model is loaded yet")
    return ScoringContext(state=state, model=model, caller=caller)


Scoring = Annotated[ScoringContext, Depends(get_scoring_context)]

BEARER_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
"""OpenAPI security requirement for routes that check the token without ``bearer_scheme``."""


def request_id_for(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is a short safe token, else a new UUID."""
    return choose_request_id(request.headers.get("x-request-id"))


async def parse_body(request: Request, schema: type[ModelT]) -> ModelT:
    """Validate the raw JSON body against a generated request model in one pass (Rust JSON).

    Raises:
        RequestValidationError: 422 with field paths and messages, no caller values.
    """
    body = await request.body()
    try:
        return schema.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(clean_errors(exc)) from None

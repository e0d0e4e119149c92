"""What the scoring routes share: caller checks, the serving model, body validation, scoring.

Each helper raises ``HTTPException`` (or ``RequestValidationError``) with the documented
status, so the routes stay ordinary FastAPI routes and the app's exception handlers render
every error the same way. Nothing here is a FastAPI dependency: the hot route calls these
functions directly instead of paying for dependency resolution on every request.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import numpy as np
import numpy.typing as npt
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from churn_mlops.serving.model_store import LoadedModel
from churn_mlops.serving.schemas import clean_errors
from churn_mlops.serving.security import AuthError, Principal
from churn_mlops.serving.state import AppState

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

INLINE_BODY_BYTES = 16 * 1024
"""Bodies up to this size are validated and scored on the event loop (tens of microseconds);
larger ones on a worker thread, so that big batches never stall liveness probes."""

INLINE_ROWS = 24
"""By-id requests with up to this many found customers are scored on the event loop (about
the rows of an ``INLINE_BODY_BYTES`` body: an id is a few bytes, so its body size says
nothing about the work)."""


def choose_request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a short safe token, else 32 random hex digits."""
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return os.urandom(16).hex()  # 128 random bits, like a UUID4 at a third of its cost


def request_id_for(request: Request) -> str:
    """The request id of ``request`` (see :func:`choose_request_id`)."""
    return choose_request_id(request.headers.get("x-request-id"))


def auth_exception(exc: AuthError) -> HTTPException:
    """401/403 with the ``WWW-Authenticate`` header RFC 6750 asks for."""
    error = "insufficient_scope" if exc.status == 403 else "invalid_token"
    return HTTPException(
        status_code=exc.status,
        detail=exc.reason,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


def check_caller(state: AppState, request: Request, scope: str) -> Principal | None:
    """Verify the bearer token for ``scope`` and apply the per-caller rate limit.

    Raises:
        HTTPException: 401 (missing, expired, forged, wrong audience...), 403 (scope), 429
            (rate limit, with ``Retry-After``).
    """
    try:
        principal = state.verifier.authorize(request.headers.get("authorization"), scope)
    except AuthError as exc:
        raise auth_exception(exc) from None
    limiter = state.rate_limiter
    if limiter.enabled:
        if principal is not None and principal.subject is not None:
            caller = f"sub:{principal.subject}"
        elif principal is not None:  # a token without subject: its own bucket
            token = request.headers.get("authorization", "")
            caller = "tok:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        else:
            caller = f"ip:{request.client.host if request.client else '-'}"
        wait = limiter.retry_after(caller)
        if wait:
            raise HTTPException(
                status_code=429,
                detail="rate limit exceeded for this caller",
                headers={"Retry-After": str(wait)},
            )
    return principal


def serving_model(state: AppState) -> LoadedModel:
    """The model serving now (read once per request).

    Raises:
        HTTPException: 503 while no model is loaded.
    """
    model = state.store.current
    if model is None:
        raise HTTPException(
            status_code=503,
            detail="no model is loaded yet",
            headers={"Retry-After": str(state.admission.retry_after_s)},
        )
    return model


def validate_body(state: AppState, schema: type[ModelT], body: bytes) -> ModelT:
    """Validate a raw JSON body against a generated request model (one pass, Rust JSON).

    Raises:
        RequestValidationError: 422 with at most ``CHURN_MAX_ERRORS_REPORTED`` field paths and
            messages, never the caller's values or invented field names.
    """
    try:
        return schema.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            clean_errors(exc, limit=state.settings.max_errors_reported)
        ) from None


async def off_loop(body: bytes, work: Callable[[], T]) -> T:
    """Run ``work`` inline for small bodies, on a worker thread for large ones."""
    if len(body) <= INLINE_BODY_BYTES:
        return work()
    return await anyio.to_thread.run_sync(work)


def row_ids(request_id: str, n_rows: int) -> list[str]:
    """Prediction ids: the request id for one row, ``<request id>-<i>`` for several."""
    if n_rows == 1:
        return [request_id]
    return [f"{request_id}-{i}" for i in range(n_rows)]


def reserve_rows(state: AppState, n_rows: int) -> None:
    """Count rows into the work in flight.

    Raises:
        HTTPException: 503 with ``Retry-After`` beyond ``CHURN_MAX_ROWS_IN_FLIGHT``.
    """
    if not state.admission.reserve_rows(n_rows):
        raise HTTPException(
            status_code=503,
            detail="the server is at capacity; retry later",
            headers=state.admission.retry_header,
        )


async def score_rows(
    state: AppState, model: LoadedModel, rows: list[dict[str, Any]], *, inline: bool
) -> npt.NDArray[np.float64]:
    """Probabilities of validated rows (``/v1/predict``, ``/v1/customers/predict``).

    Small requests (``inline``) go through the app's micro-batcher, which scores the rows of
    every request that reached it during one event-loop turn in one model call on the loop;
    large ones are scored alone on a worker thread (they are batches already, and must not
    stall the loop).
    """
    if not inline:
        return await anyio.to_thread.run_sync(lambda: model.score(rows))
    return await state.batcher.score(model.predictor, rows)

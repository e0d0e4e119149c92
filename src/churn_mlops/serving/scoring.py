"""Scoring one ``/v1/predict`` body: the logic shared by the FastAPI route and the fast lane.

Framework-free on purpose: it takes the raw body bytes and returns the response bytes, so the
documented FastAPI route (:mod:`churn_mlops.serving.api.routes.predict`) and the pure-ASGI
fast lane (:mod:`churn_mlops.serving.lane`) give byte-for-byte the same answers, errors
included.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from churn_mlops.serving.model_store import LoadedModel
from churn_mlops.serving.prediction_log import utc_now_iso
from churn_mlops.serving.schemas import clean_errors
from churn_mlops.serving.security import SCOPE_PREDICT, AuthError, Principal
from churn_mlops.serving.state import AppState

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def choose_request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a short safe token, else a new UUID."""
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


class ScoringFailure(Exception):
    """A request that gets an error answer: status, JSON ``detail`` and extra headers."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}

    def body(self) -> bytes:
        """The JSON error body, ``{"detail": ...}``."""
        return orjson.dumps({"detail": self.detail})


def auth_failure(exc: AuthError) -> ScoringFailure:
    """401/403 with the ``WWW-Authenticate`` header RFC 6750 asks for."""
    error = "insufficient_scope" if exc.status == 403 else "invalid_token"
    return ScoringFailure(exc.status, exc.reason, {"WWW-Authenticate": f'Bearer error="{error}"'})


def check_predict_caller(state: AppState, authorization: str | None) -> Principal | None:
    """Verify the bearer token for the ``predict`` scope.

    Raises:
        ScoringFailure: 401 (missing, expired, forged, wrong audience...) or 403 (scope).
    """
    try:
        return state.verifier.authorize(authorization, SCOPE_PREDICT)
    except AuthError as exc:
        raise auth_failure(exc) from None


def serving_model(state: AppState) -> LoadedModel:
    """The model serving now.

    Raises:
        ScoringFailure: 503 while no model is loaded.
    """
    model = state.store.current
    if model is None:
        raise ScoringFailure(503, "no model is loaded yet")
    return model


def row_ids(request_id: str, n_rows: int) -> list[str]:
    """Prediction ids: the request id for one row, ``<request id>-<i>`` for several."""
    if n_rows == 1:
        return [request_id]
    return [f"{request_id}-{i}" for i in range(n_rows)]


async def predict_payload(
    state: AppState, model: LoadedModel, body: bytes, request_id: str
) -> bytes:
    """Validate, score, log and answer one predict request.

    Returns:
        The JSON response body.

    Raises:
        ScoringFailure: 422 with field paths (never the values sent) for an invalid body.
    """
    try:
        parsed = model.schemas.predict.model_validate_json(body)
    except ValidationError as exc:
        raise ScoringFailure(422, clean_errors(exc)) from None
    # Field values of a validated pydantic model live in its __dict__: the cheapest way to
    # get plain dicts (model_dump would copy and re-validate nothing, at twice the cost).
    rows: list[dict[str, Any]] = [row.__dict__ for row in parsed.rows]  # type: ignore[attr-defined]
    if state.batcher is not None:
        scores = await state.batcher.predict(model.predictor, rows)
    else:
        scores = model.predictor.predict_proba(rows)
    version = model.version
    threshold = model.threshold
    probabilities: list[float] = scores.tolist()
    labels = [1 if p >= threshold else 0 for p in probabilities]
    ids = row_ids(request_id, len(rows))
    predictions = [
        {
            "request_id": rid,
            "customer_id": row.get("customer_id"),
            "probability": probability,
            "label": label,
            "model_version": version,
        }
        for rid, row, probability, label in zip(ids, rows, probabilities, labels, strict=True)
    ]
    if state.predictions is not None:
        state.predictions.write_predictions(
            utc_now_iso(), version, ids, rows, probabilities, labels
        )
    state.metrics.observe_predictions(version, probabilities, labels)
    model.drift.observe(rows)
    return orjson.dumps(
        {
            "request_id": request_id,
            "model_name": model.metadata.model_name,
            "model_version": version,
            "threshold": threshold,
            "predictions": predictions,
        }
    )

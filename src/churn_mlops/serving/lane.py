"""The fast lane: ``POST /v1/predict`` answered by a pure ASGI handler in front of the router.

Starlette's middleware, routing and FastAPI's dependency resolution cost about 150-200 µs per
request on a busy two-core machine, two to three times the prediction itself. For the one
route that carries production traffic this middleware answers directly, with the same code
as the documented FastAPI route (:func:`churn_mlops.serving.scoring.predict_payload`), the
same checks in the same order (body size → token → model loaded → body) and the same
answers; it also records the HTTP metrics of the requests it serves. Every other request,
and ``/v1/predict`` itself when ``CHURN_FAST_LANE=false``, goes through FastAPI.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Receive, Scope, Send

from churn_mlops.serving.scoring import (
    ScoringFailure,
    check_predict_caller,
    choose_request_id,
    predict_payload,
    serving_model,
)
from churn_mlops.serving.state import AppState

PREDICT_PATH = "/v1/predict"
_JSON = (b"content-type", b"application/json")


class PredictLane:
    """ASGI middleware that serves ``POST /v1/predict`` itself; see the module docstring."""

    def __init__(self, app: Any, state: AppState) -> None:
        self.app = app
        self.state = state
        self.max_bytes = state.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        metrics = self.state.metrics
        start = time.perf_counter()
        status = 500
        metrics.in_flight.inc()
        try:
            answer = await self._answer(scope, receive)
            if answer is None:  # the client went away before sending its body
                status = 499
                return
            status, content, headers = answer
            headers.append((b"content-length", str(len(content)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        finally:
            metrics.in_flight.dec()
            metrics.observe_request(PREDICT_PATH, "POST", status, time.perf_counter() - start)

    async def _answer(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        authorization = declared = given_id = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                declared = value
            elif name == b"x-request-id":
                given_id = value.decode("latin-1")
        try:
            if declared is not None:
                try:
                    too_large = int(declared) > self.max_bytes
                except ValueError:
                    raise ScoringFailure(400, "invalid Content-Length header") from None
                if too_large:
                    raise self._too_large()
            check_predict_caller(self.state, authorization)
            model = serving_model(self.state)
            body = await self._read_body(receive)
            if body is None:
                return None
            request_id = choose_request_id(given_id)
            content = await predict_payload(self.state, model, body, request_id)
            return 200, content, [_JSON, (b"x-request-id", request_id.encode())]
        except ScoringFailure as failure:
            headers = [_JSON] + [
                (k.lower().encode(), v.encode()) for k, v in failure.headers.items()
            ]
            return failure.status, failure.body(), headers

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self) -> ScoringFailure:
        return ScoringFailure(413, f"request body exceeds {self.max_bytes} bytes")

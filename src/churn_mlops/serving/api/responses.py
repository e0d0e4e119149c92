"""The error answers every route documents in OpenAPI (schemathesis holds the server to them)."""

from __future__ import annotations

from typing import Any

_ERROR = {
    "type": "object",
    "properties": {"detail": {}},
    "required": ["detail"],
}


def _doc(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": _ERROR}}}


Responses = dict[int | str, dict[str, Any]]

AUTH: Responses = {
    401: _doc("missing or invalid bearer token"),
    403: _doc("token without the required scope"),
    429: _doc("rate limit of this caller exceeded; see Retry-After"),
}
BODY: Responses = {
    400: _doc("malformed request (for example an invalid Content-Length)"),
    408: _doc("the request body did not arrive in time"),
    413: _doc("request body too large"),
    415: _doc("the request body is not JSON"),
    422: _doc("invalid body: field paths and messages, never the values sent"),
}
NOT_ALLOWED: Responses = {405: _doc("method not allowed on this path")}
UNAVAILABLE: Responses = {
    503: _doc("no model loaded yet, or the server is at capacity; see Retry-After")
}

SCORING: Responses = {**AUTH, **BODY, **NOT_ALLOWED, **UNAVAILABLE}
"""Errors of the scoring routes (``/v1/predict``, ``/v1/explain``)."""
AUTHENTICATED_GET: Responses = {**AUTH, **NOT_ALLOWED, **UNAVAILABLE}
"""Errors of the authenticated read routes."""
AUTHENTICATED_POST: Responses = {**AUTH, **BODY, **NOT_ALLOWED, **UNAVAILABLE}
"""Errors of the authenticated write routes."""

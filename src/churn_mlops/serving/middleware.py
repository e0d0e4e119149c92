"""Pure ASGI middleware: the request-body size limit (413) before any parsing happens."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Message, Receive, Scope, Send

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Send a complete JSON response through a raw ASGI ``send``."""
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by header or while streaming.

    A declared ``Content-Length`` over the limit is refused without reading the body; a body
    without one (chunked) is read up to the limit and replayed to the app, or refused as soon
    as it passes the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        too_large = {"detail": f"request body exceeds {self.max_bytes} bytes"}
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if length > self.max_bytes:
                await send_json(send, 413, too_large)
                return
            await self.app(scope, receive, send)
            return
        # No declared length: buffer up to the limit, then replay.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

"""Pure ASGI middleware and the uvicorn protocol that guard the app before any parsing.

:class:`RequestGuardMiddleware`, in this order: methods a path does not serve (405 with the
full ``Allow`` list), body size (413, by header or while streaming), body media type (415),
load shedding of the scoring routes (503 with ``Retry-After`` beyond
``CHURN_MAX_REQUESTS_IN_FLIGHT``), and a deadline for receiving the body (408). The
half-sent-headers case is the protocol's: :class:`HeaderTimeoutProtocol` closes a connection
whose request headers are not complete within ``CHURN_REQUEST_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = ("application/json",)


async def send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send a complete JSON response through a raw ASGI ``send``."""
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class Admission:
    """Work in flight on the scoring routes: requests (checked here) and rows (by the route).

    Both counters are touched only on the event loop, so plain integers are enough.
    """

    def __init__(self, *, max_requests: int, max_rows: int, retry_after_s: int) -> None:
        self.max_requests = max_requests
        self.max_rows = max_rows
        self.retry_after_s = retry_after_s
        self.requests = 0
        self.rows = 0
        self.shed = 0

    def reserve_rows(self, n: int) -> bool:
        """Count ``n`` rows in; False (nothing counted) when that passes the row budget."""
        if self.rows and self.rows + n > self.max_rows:
            self.shed += 1
            return False
        self.rows += n
        return True

    def release_rows(self, n: int) -> None:
        """Count ``n`` rows out."""
        self.rows -= n

    @property
    def retry_header(self) -> dict[str, str]:
        """The ``Retry-After`` header of a shed request."""
        return {"Retry-After": str(self.retry_after_s)}


class RequestGuardMiddleware:
    """See the module docstring.

    Args:
        app: The inner ASGI app.
        allowed: Methods per path (``HEAD`` and ``OPTIONS`` are added where GET is served).
        max_bytes: Largest accepted body.
        admission: Counters of work in flight.
        scoring_paths: Paths whose requests count as scoring work.
        timeout_s: Deadline for receiving the whole body.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed: dict[str, set[str]],
        max_bytes: int,
        admission: Admission,
        scoring_paths: frozenset[str],
        timeout_s: float,
    ) -> None:
        self.app = app
        self.allowed = {p: ", ".join(sorted(m)) for p, m in allowed.items()}
        self.allowed_sets = allowed
        self.max_bytes = int(max_bytes)
        self.admission = admission
        self.scoring_paths = scoring_paths
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        methods = self.allowed_sets.get(path)
        if methods is not None and method not in methods:
            await send_json(
                send,
                405,
                {"detail": f"method {method} is not allowed on this path"},
                [(b"allow", self.allowed[path].encode())],
            )
            return
        if method not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = content_type = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
        length: int | None = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if length > self.max_bytes:
                await send_json(send, 413, self._too_large())
                return
        if not _is_json(content_type) and length != 0:
            await send_json(
                send, 415, {"detail": "the request body must be JSON (application/json)"}
            )
            return
        admission = self.admission
        scoring = path in self.scoring_paths
        if scoring and admission.requests >= admission.max_requests:
            admission.shed += 1
            await send_json(
                send,
                503,
                {"detail": "the server is at capacity; retry later"},
                [(b"retry-after", str(admission.retry_after_s).encode())],
            )
            return
        if scoring:
            admission.requests += 1
        try:
            await self._call_with_body(scope, receive, send, length)
        finally:
            if scoring:
                admission.requests -= 1

    async def _call_with_body(
        self, scope: Scope, receive: Receive, send: Send, length: int | None
    ) -> None:
        # Read the whole body under one deadline and the size limit, then replay it.
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        await send_json(send, 413, self._too_large())
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await send_json(
                send,
                408,
                {"detail": f"the request body did not arrive within {self.timeout_s:g} s"},
                [(b"connection", b"close")],
            )
            return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> dict[str, Any]:
        return {"detail": f"request body exceeds {self.max_bytes} bytes"}


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a deadline for a request's headers.

    uvicorn's keep-alive timeout only runs between requests; a client that opens a connection
    and sends its headers slowly (slowloris) would hold it open forever. The deadline starts
    when the connection opens and when a request begins, and stops when its headers are
    complete; the body has its own deadline in :class:`RequestGuardMiddleware`.
    """

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle until the next request: uvicorn's keep-alive timeout applies


def header_timeout_protocol(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """A :class:`HeaderTimeoutProtocol` class with the given deadline (uvicorn's ``http=``)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": timeout_s})

"""Request-body limits: every HTTP request body is bounded before the app reads it.

`RequestBodyLimit` is an ASGI middleware. A request whose `Content-Length` is over its route's limit is
answered 413 at once, its body never read. A body without a length (chunked) is read here, chunk by chunk,
up to the limit and no further: over it, 413 at once; within it, the app gets the chunks as they came. The
answer is the center's error body, `{"detail": "...", "code": "..."}`, whose detail names the limit and its
setting; the connection's other requests, and every other client, are served as before.

Each route may have its own `BodyLimit` (the camera import takes more than the JSON routes), by its path or
by a path prefix (the clip upload, whose path names the clip); the default holds for every other path. A
`streamed` limit belongs to a route that reads its body as a stream and bounds it itself (a clip of up to
`clip_max_bytes` is never held in memory): here only a declared `Content-Length` over it is refused, and a
chunked body passes through as it comes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from center_api.errors import ErrorBody, PayloadTooLarge

log = logging.getLogger(__name__)


class BodyTooLarge(PayloadTooLarge, code="body_too_large"):
    """A request body over its route's limit (413 `body_too_large`, or the route's own code)."""


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The most bytes a request body may have, the setting that says so, and the code of a refusal."""

    max_bytes: int
    setting: str = "max_body_bytes"
    code: str = BodyTooLarge.code
    streamed: bool = False  # the route bounds its streamed body itself

    def refusal(self) -> BodyTooLarge:
        return BodyTooLarge(
            f"request body over the limit of {self.max_bytes} bytes ({self.setting})", code=self.code
        )


class RequestBodyLimit:
    """ASGI middleware: refuse (413) a request body over `default`, or over its path's limit in `routes`."""

    def __init__(
        self,
        app: ASGIApp,
        default: BodyLimit,
        routes: Mapping[str, BodyLimit] | None = None,
        prefixes: Mapping[str, BodyLimit] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.routes = dict(routes or {})
        self.prefixes = dict(prefixes or {})

    def limit(self, path: str) -> BodyLimit:
        """The limit of a path: its own, else its prefix's, else the default."""
        if path in self.routes:
            return self.routes[path]
        return next((lim for prefix, lim in self.prefixes.items() if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is not None:
            if length.strip().isdigit() and int(length) > limit.max_bytes:
                await self._refuse(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)  # the server delivers no more than Content-Length
            return
        if limit.streamed or "chunked" not in headers.get("transfer-encoding", "").lower():
            await self.app(scope, receive, send)  # no body
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client left: the app sees the disconnect
            size += len(message.get("body", b""))
            if size > limit.max_bytes:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: BodyLimit) -> None:
        error = limit.refusal()
        log.info("refused %s %s: %s", scope.get("method"), scope.get("path"), error.message)
        body = ErrorBody(detail=error.message, code=error.code).model_dump()
        # the unread rest of the body: the server closes the connection rather than read it
        response = JSONResponse(body, status_code=error.status, headers={"Connection": "close"})
        await response(scope, receive, send)

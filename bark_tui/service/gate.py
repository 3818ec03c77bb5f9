"""What every request passes before a route: the body-size limit, the Host check of a
server without a key, and one log line (method, path, status, seconds, queue depth).

A pure ASGI middleware, so streamed responses and disconnects pass through it
untouched; `ApiError` and `error_response` give every refusal the one JSON shape.
"""

from __future__ import annotations

import logging
import time

from fastapi.responses import JSONResponse

from .board import JobBoard
from .config import is_loopback
from .wire import error_body

log = logging.getLogger("bark_tui.serve")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


class Gate:
    """Pure ASGI middleware: body size limit, and one log line per request."""

    def __init__(self, app, max_body: int, board: JobBoard, local_only: bool) -> None:
        self.app = app
        self.max_body = max_body
        self.board = board
        self.local_only = local_only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}
        headers = dict(scope.get("headers") or {})
        if self.local_only and not local_host(headers.get(b"host", b"")):
            # without a key only this machine may call: a web page that points its own
            # host name at 127.0.0.1 (DNS rebinding) is turned away here
            response = error_response(400, "this server answers only requests addressed to "
                              "127.0.0.1 or localhost (it has no key)")
            await response(scope, receive, send)
            self._log(scope, 400, t0)
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            response = error_response(413, f"the request body is over {self.max_body // 1024} KB")
            await response(scope, receive, send)
            self._log(scope, 413, t0)
            return
        seen = {"bytes": 0}

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_body:
                    raise ApiError(413, f"the request body is over {self.max_body // 1024} KB")
            return message

        async def logged_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, counted_receive, logged_send)
        finally:
            self._log(scope, status["code"], t0)

    def _log(self, scope, code: int, t0: float) -> None:
        log.info("%s %s %d %.2fs queue=%d", scope.get("method"), scope.get("path"), code,
                 time.perf_counter() - t0, self.board.depth)


def local_host(host: bytes) -> bool:
    """A Host header naming this machine (127.x, ::1, localhost), with any port."""
    text = host.decode("latin-1").strip().lower()
    if text.startswith("["):
        name = text[1:text.find("]")] if "]" in text else text
    else:
        name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return is_loopback(name)

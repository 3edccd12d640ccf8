"""`MAX_REQUEST_BYTES`: no request body larger than the limit reaches a route.

A pure ASGI middleware. A `Content-Length` over the limit is answered 413 before any byte of
the body is read; a body without one (chunked, streamed) is counted as it arrives, and once it
passes the limit the route's own answer is dropped and the 413 envelope sent instead.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from evalserve.errors import PayloadTooLargeError, error_body

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "install_body_limit"]


class _TooLarge(Exception):
    """Raised into the route from `receive` once the body passes the limit."""


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _human(size: int) -> str:
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 2**shift:
            return f"{size / 2**shift:.4g} {unit}"
    return f"{size} B"


class BodySizeLimit:
    """Answer 413 to any HTTP request whose body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope.get("headers", []))
        if length is not None and length > self.max_bytes:
            await self._refuse(send, length)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # the route's answer to a body it never fully got
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(send, None)

    async def _refuse(self, send: Send, length: int | None) -> None:
        size = f"of {length} bytes " if length is not None else ""
        error = PayloadTooLargeError(
            f"the request body {size}is larger than the limit of {self.max_bytes} bytes "
            f"({_human(self.max_bytes)}, MAX_REQUEST_BYTES): send less per request")
        body = json.dumps({"error": error_body(error)}).encode()
        await send({"type": "http.response.start", "status": error.status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": body})


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Refuse request bodies over `max_bytes` on every route of `app` (413)."""
    app.add_middleware(BodySizeLimit, max_bytes=max_bytes)

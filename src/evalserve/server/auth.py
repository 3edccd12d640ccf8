"""Bearer-token auth for every route but the health routes.

With `API_TOKEN` / `TEXT_GEN_API_TOKEN` set (comma-separated lists allowed), a request needs
`Authorization: Bearer <token>`; otherwise it gets the 401 envelope with `WWW-Authenticate`.
It is an ASGI middleware, so routes added by any module (and mounted apps) are covered.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from evalserve.errors import AuthenticationError, error_body

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["OPEN_PATHS", "BearerAuth", "install_auth", "check_token", "bearer_token",
           "client_identity"]

#: Answer without a token: seed 000 `/health`, seed 002 `/healthz`, seed 003 `GET /`, and the
#: dashboard page (it holds no data; its API calls carry the token).
OPEN_PATHS = frozenset({"/", "/health", "/healthz", "/ui"})


def check_token(presented: str | None, tokens: list[str]) -> bool:
    """True when `presented` equals one of `tokens`; compares against all of them in
    constant time so timing reveals neither which token nor how much matched."""
    if presented is None:
        return False
    given = presented.encode()
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given, token.encode())
    return ok


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def client_identity(scope: Scope) -> str:
    """Who is calling, for per-key rate limits: a hash of the bearer token, else the IP."""
    token = bearer_token(scope.get("headers", []))
    if token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


class BearerAuth:
    """Pure ASGI middleware; a no-op when no token is configured."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self.tokens or scope["path"] in OPEN_PATHS
                or scope["method"] == "OPTIONS"):
            await self.app(scope, receive, send)
            return
        presented = bearer_token(scope.get("headers", []))
        if check_token(presented, self.tokens):
            await self.app(scope, receive, send)
            return
        message = ("missing bearer token: send `Authorization: Bearer <API_TOKEN>`"
                   if presented is None else "invalid bearer token")
        error = AuthenticationError(message)
        body = json.dumps({"error": error_body(error)}).encode()
        await send({"type": "http.response.start", "status": error.status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="evalserve"'),
        ]})
        await send({"type": "http.response.body", "body": body})


def install_auth(app: FastAPI, tokens: list[str]) -> None:
    """Protect every route of `app` except `OPEN_PATHS` when `tokens` is not empty."""
    if tokens:
        app.add_middleware(BearerAuth, tokens=list(tokens))

"""Bearer-token auth for every route but the health routes, and who the caller is.

With `API_TOKEN` / `TEXT_GEN_API_TOKEN` / `ADMIN_API_TOKEN` set (comma-separated lists
allowed), a request needs `Authorization: Bearer <token>`; otherwise it gets the 401 envelope
with `WWW-Authenticate`. It is an ASGI middleware, so routes added by any module (and mounted
apps) are covered. Tokens are compared in constant time and never logged.

Every request gets a `Caller` (`caller_of(request)`): its key id (a hash prefix of the token,
never the token) owns the jobs it submits; admin tokens see every job. With no token
configured (single-user mode) there is no key id and everything is shared.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalserve.errors import AuthenticationError, error_body

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["OPEN_PATHS", "BearerAuth", "Caller", "install_auth", "check_token", "bearer_token",
           "key_id", "caller_of"]

#: Answer without a token: seed 000 `/health`, seed 002 `/healthz`, seed 003 `GET /`, and the
#: dashboard page (it holds no data; its API calls carry the token).
OPEN_PATHS = frozenset({"/", "/health", "/healthz", "/ui"})

_SCOPE_KEY = "evalserve.caller"


@dataclass(frozen=True)
class Caller:
    """Who sent a request.

    `key_id` owns the jobs the caller submits (None in single-user mode); `admin` callers
    (admin tokens, or everyone in single-user mode) see and manage every job; `address` is
    the client's IP address.
    """

    key_id: str | None
    admin: bool
    address: str

    @property
    def owner_filter(self) -> str | None:
        """The owner whose jobs this caller may see, or None for all of them (an anonymous
        caller, on an open path, matches no owner)."""
        return None if self.admin else (self.key_id or "")

    @property
    def identity(self) -> str:
        """The rate-limit identity: the key id, else the client address (so rotating an
        unchecked bearer string gives no fresh window)."""
        return f"key:{self.key_id}" if self.key_id else f"ip:{self.address}"


def key_id(token: str) -> str:
    """The public id of a token: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


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


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def caller_of(request: Any) -> Caller:
    """The `Caller` the middleware attached to a request (or ASGI scope); without the
    middleware (an app built without `install_auth`), a single-user admin."""
    scope = request if isinstance(request, dict) else request.scope
    caller = scope.get(_SCOPE_KEY)
    if caller is None:
        return Caller(None, True, _address(scope))
    return caller


class BearerAuth:
    """Pure ASGI middleware: checks tokens when any is configured, and attaches the caller."""

    def __init__(self, app: ASGIApp, tokens: list[str], admin_tokens: list[str]) -> None:
        self.app = app
        self.tokens = tokens
        self.admin_tokens = admin_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.tokens:
            scope[_SCOPE_KEY] = Caller(None, True, _address(scope))
            await self.app(scope, receive, send)
            return
        presented = bearer_token(scope.get("headers", []))
        if check_token(presented, self.tokens):
            assert presented is not None
            scope[_SCOPE_KEY] = Caller(key_id(presented),
                                       check_token(presented, self.admin_tokens),
                                       _address(scope))
            await self.app(scope, receive, send)
            return
        if scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            scope[_SCOPE_KEY] = Caller(None, False, _address(scope))
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


def install_auth(app: FastAPI, tokens: list[str], admin_tokens: list[str] = ()) -> None:
    """Protect every route of `app` except `OPEN_PATHS` when `tokens` is not empty, and
    attach the `Caller` to every request."""
    app.add_middleware(BearerAuth, tokens=list(tokens), admin_tokens=list(admin_tokens))

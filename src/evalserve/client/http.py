"""The HTTP layer the clients share: server and token defaults, the bearer header, errors.

An error answer (the `{"error": {...}}` envelope) or an unreachable server becomes
`EvalserveHTTPError` here, once.

The server is `base_url` if given, else `$EVALSERVE_URL`, else `$METRICS_URL`, else
`http://localhost:8000`; the token is `token` if given, else the first of `$API_TOKEN`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

import httpx

from evalserve.errors import EvalserveError

__all__ = [
    "DEFAULT_URL",
    "AsyncConnection",
    "EvalserveHTTPError",
    "async_client",
    "auth_headers",
    "check",
    "default_token",
    "default_url",
    "error_from_response",
    "first_token",
    "send",
    "send_async",
    "sync_client",
    "transport_error",
]

DEFAULT_URL = "http://localhost:8000"


class EvalserveHTTPError(EvalserveError):
    """The server answered with an error (or could not be reached: `status` 0)."""

    def __init__(self, message: str, *, status: int, type_: str = "server_error",
                 code: str = "http_error") -> None:
        super().__init__(message, code=code)
        self.status = status
        self.type = type_

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" if self.status else self.message


def first_token(raw: str | None) -> str | None:
    """The first token of a comma-separated list (`API_TOKEN` may name several), or None."""
    tokens = [t.strip() for t in (raw or "").split(",") if t.strip()]
    return tokens[0] if tokens else None


def default_url() -> str:
    """`$EVALSERVE_URL`, else `$METRICS_URL`, else `DEFAULT_URL`."""
    return os.environ.get("EVALSERVE_URL") or os.environ.get("METRICS_URL") or DEFAULT_URL


def default_token() -> str | None:
    """The first token of `$API_TOKEN`, or None."""
    return first_token(os.environ.get("API_TOKEN"))


def auth_headers(token: str | None) -> dict[str, str]:
    """`Authorization: Bearer <token>` when there is a token; no header otherwise."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def sync_client(base_url: str, token: str | None, *, timeout: float | httpx.Timeout,
                **options: Any) -> httpx.Client:
    """An `httpx.Client` for the server at `base_url`, sending the bearer `token`."""
    return httpx.Client(base_url=base_url.rstrip("/"), headers=auth_headers(token),
                        timeout=timeout, **options)


def async_client(base_url: str, token: str | None, *, timeout: float | httpx.Timeout,
                 **options: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for the server at `base_url`, sending the bearer `token`."""
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=auth_headers(token),
                             timeout=timeout, **options)


def error_from_response(response: httpx.Response) -> EvalserveHTTPError:
    """The error answer as `EvalserveHTTPError`: the envelope's message, type and code, or
    (another server's body) `HTTP <status>: <text>`."""
    try:
        err = response.json()["error"]
        if not isinstance(err, Mapping):
            raise TypeError("error is not an object")
        return EvalserveHTTPError(
            str(err.get("message", "")), status=response.status_code,
            type_=str(err.get("type", "server_error")), code=str(err.get("code", "")),
        )
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:300] or response.reason_phrase
        return EvalserveHTTPError(f"HTTP {response.status_code}: {text}",
                                  status=response.status_code)


def check(response: httpx.Response) -> httpx.Response:
    """`response` if it succeeded; else raise its `EvalserveHTTPError` (read the body of a
    streamed response first)."""
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def transport_error(exc: httpx.TransportError, base_url: object, path: str
                    ) -> EvalserveHTTPError:
    """A timeout or an unreachable server as `EvalserveHTTPError` with `status` 0."""
    if isinstance(exc, httpx.TimeoutException):
        return EvalserveHTTPError(
            f"evalserve at {base_url} did not answer {path} in time: raise `timeout` "
            "or send fewer texts per call", status=0, code="timeout")
    return EvalserveHTTPError(
        f"cannot reach evalserve at {base_url} ({exc}): start it with "
        "`evalserve serve` or set EVALSERVE_URL", status=0, code="connection_error")


def send(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """`http.request(...)`, its failures raised as `EvalserveHTTPError`."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise transport_error(exc, str(http.base_url).rstrip("/"), path) from exc
    return check(response)


async def send_async(http: httpx.AsyncClient, method: str, path: str,
                     **kwargs: Any) -> httpx.Response:
    """`await http.request(...)`, its failures raised as `EvalserveHTTPError`."""
    try:
        response = await http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise transport_error(exc, str(http.base_url).rstrip("/"), path) from exc
    return check(response)


class AsyncConnection:
    """Base of the async clients: one `httpx.AsyncClient` (`http`), closed by `close()` or at
    the end of `async with`."""

    http: httpx.AsyncClient

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

"""The HTTP side of the `openai` engine: one pooled `httpx.AsyncClient` to the upstream.

Connection errors, timeouts (connect and read), 429 and 5xx are retried with exponential
backoff (`UPSTREAM_RETRIES`, honouring `Retry-After`); failures become `UpstreamError` (502) or
`UpstreamTimeoutError` (504), and a 4xx that is the client's fault keeps its status and message.
Messages say "the upstream server", never its URL: `VLLM_ENDPOINT` may carry credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evalserve.errors import (
    EvalserveError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["UpstreamClient"]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CLIENT_STATUSES = frozenset({400, 404, 409, 413, 422})


def _error_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for field in ("message", "detail", "error"):
            if data.get(field):
                return str(data[field])
    return str(data)[:500]


def _tries(retries: int) -> str:
    return f"after {retries + 1} attempt{'s' if retries else ''} (UPSTREAM_RETRIES={retries})"


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None


class UpstreamClient:
    """Sends requests to an OpenAI-compatible server, with retries and our error types.

    `pool` sizes the connection pool (twice that many connections, at least 16). httpx is
    imported when the first request is sent. `routed`: an endpoint of `UPSTREAMS_FILE` (the
    router retries elsewhere), so messages point there rather than at `VLLM_ENDPOINT` and
    `UPSTREAM_RETRIES`.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 retries: int = 2, backoff: float = 0.25, pool: int = 32,
                 transport: httpx.AsyncBaseTransport | None = None,
                 routed: bool = False) -> None:
        self.base_url = base_url.rstrip("/")
        self.routed = routed
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.pool = pool
        self.transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def host(self) -> str:
        """`host:port` of the upstream, without credentials, path or query (for logs)."""
        parts = urlsplit(self.base_url)
        return parts.netloc.rsplit("@", 1)[-1] or "the upstream server"

    def open(self) -> httpx.AsyncClient:
        """The pooled client, created on first use."""
        import httpx

        if self._client is None:
            quiet = logging.getLogger("httpx")
            if quiet.level == logging.NOTSET:  # one INFO line per upstream call otherwise
                quiet.setLevel(logging.WARNING)
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=headers, transport=self.transport,
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                limits=httpx.Limits(max_connections=max(self.pool * 2, 16),
                                    max_keepalive_connections=max(self.pool, 8)),
            )
        return self._client

    async def close(self) -> None:
        """Close the pool; a later request opens a new one."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                   stream: bool = False) -> httpx.Response:
        """Send with retries on connection errors, 429 and 5xx; map failures to our errors.

        With `stream`, the body is not read: the caller reads it and closes the response.
        """
        import httpx

        client = self.open()
        attempt = 0
        while True:
            delay = self.backoff * 2**attempt
            try:
                request = client.build_request(method, path, json=body)
                resp = await client.send(request, stream=stream)
            except httpx.TimeoutException:
                if attempt < self.retries:
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise UpstreamTimeoutError(
                    f"the upstream server did not answer within {self.timeout:g} s "
                    f"{self._tries()}") from None
            except httpx.TransportError as exc:
                if attempt < self.retries:
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                # the exception text may quote the URL (and so its credentials): not shown
                raise UpstreamError(f"the upstream server cannot be reached "
                                    f"({type(exc).__name__}){self._check()}") from None
            if resp.status_code < 400:
                return resp
            if stream:
                await resp.aread()
                await resp.aclose()
            if resp.status_code in _RETRY_STATUSES and attempt < self.retries:
                attempt += 1
                await asyncio.sleep(min(_retry_after(resp) or delay, 10.0))
                continue
            raise self.error(resp)

    def _tries(self) -> str:
        if self.routed:
            return "(the endpoint's timeout in UPSTREAMS_FILE)"
        return f"(UPSTREAM_TIMEOUT), {_tries(self.retries)}"

    def _check(self) -> str:
        if self.routed:
            return "; check the endpoint's url in UPSTREAMS_FILE"
        return f", {_tries(self.retries)}; check VLLM_ENDPOINT"

    def error(self, resp: httpx.Response) -> EvalserveError:
        """Our error for a failed upstream response, keeping the upstream's message."""
        status, message = resp.status_code, _error_message(resp)
        if status == 404:
            return NotFoundError(f"upstream: {message}")
        if status in _CLIENT_STATUSES or (400 <= status < 500 and status not in (401, 403, 429)):
            exc = InvalidInputError(f"upstream: {message}")
            exc.status = status
            return exc
        if status in (401, 403):
            key = "the endpoint's api_key in UPSTREAMS_FILE" if self.routed else "OPENAI_API_KEY"
            return UpstreamError(f"the upstream server refused our credentials "
                                 f"({status}: {message}); check {key}")
        if status == 429:
            return RateLimitError(f"upstream: {message}",
                                  retry_after=int(_retry_after(resp) or 1))
        if status == 504:
            return UpstreamTimeoutError(f"upstream {status}: {message}")
        return UpstreamError(f"upstream {status}: {message}")

    @contextlib.contextmanager
    def reading_stream(self) -> Iterator[None]:
        """Map transport failures while a streamed body is read to our errors."""
        import httpx

        try:
            yield
        except httpx.TimeoutException:
            raise UpstreamTimeoutError(f"the upstream server stopped streaming for "
                                       f"{self.timeout:g} s (UPSTREAM_TIMEOUT)") from None
        except httpx.TransportError as exc:
            raise UpstreamError(f"the upstream server's stream broke ({type(exc).__name__})"
                                ) from None

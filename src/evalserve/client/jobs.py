"""The job API of a running evalserve, asynchronously: submit, follow the SSE stream, results.

Used by `evalserve evaluate --server URL`; works against any server speaking seed 000's
`POST /evaluate` + `GET /stream/{job_id}`. Errors are the library's own: a 404 is
`NotFoundError`, a 409 (a finished job cancelled, nothing to retry) `ConflictError`, a
rejected submission `InvalidInputError`, anything else `UpstreamError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from evalserve.client.http import (
    AsyncConnection,
    EvalserveHTTPError,
    async_client,
    check,
    send_async,
    transport_error,
)
from evalserve.client.sse import SSELineBuffer, SSEMessage, is_final
from evalserve.errors import (
    ConflictError,
    EvalserveError,
    InvalidInputError,
    NotFoundError,
    UpstreamError,
)

__all__ = ["JobsClient"]


class JobsClient(AsyncConnection):
    """Jobs on a server at `base_url` (bearer `token` if the server needs one).

    Args:
        base_url: the server, e.g. `http://localhost:8000`.
        token: bearer token, or None for an open server.
        timeout: seconds to connect and for each answer; a stream may stay silent for longer.
        transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = base_url.rstrip("/")
        self.http = async_client(self.url, token, timeout=httpx.Timeout(timeout, read=None),
                                 transport=transport)

    def _library_error(self, err: EvalserveHTTPError, path: str) -> EvalserveError:
        if err.status == 404:
            return NotFoundError(err.message)
        if err.status == 409:
            return ConflictError(err.message)
        if err.status in (400, 422):
            return InvalidInputError(err.message)
        if err.status == 0:
            return UpstreamError(err.message)
        return UpstreamError(f"{self.url}{path} answered {err.status}: {err.message}")

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await send_async(self.http, method, path, **kwargs)
        except EvalserveHTTPError as err:
            raise self._library_error(err, path) from None

    async def submit(self, items: list[dict[str, Any]], rubric: str | dict | None = None,
                     **options: Any) -> dict[str, Any]:
        """`POST /evaluate`; the seed's answer (`job_id`, `stream_url`, ...). Options that
        are None are left out."""
        body: dict[str, Any] = {"items": items}
        if rubric is not None:
            body["rubric"] = rubric
        body.update({k: v for k, v in options.items() if v is not None})
        return (await self._send("POST", "/evaluate", json=body)).json()

    async def follow(self, job_id: str, last_event_id: int | None = None
                     ) -> AsyncIterator[SSEMessage]:
        """The job's events until `complete`, `cancelled` or a job-level `error`."""
        path = f"/stream/{job_id}"
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
        buffer = SSELineBuffer()
        try:
            async with self.http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    check(response)
                async for line in response.aiter_lines():
                    for message in buffer.feed(line):
                        yield message
                        if is_final(message):
                            return
        except httpx.TransportError as exc:
            raise self._library_error(transport_error(exc, self.url, path), path) from None
        except EvalserveHTTPError as err:
            raise self._library_error(err, path) from None

    async def results(self, job_id: str, fmt: str = "jsonl") -> str:
        """`GET /jobs/{job_id}/results` in `fmt` (`jsonl`, `json` or `csv`), as text."""
        return (await self._send("GET", f"/jobs/{job_id}/results",
                                 params={"format": fmt})).text

    async def job(self, job_id: str) -> dict[str, Any]:
        """`GET /jobs/{job_id}`: status, counters and, once completed, the `report`."""
        return (await self._send("GET", f"/jobs/{job_id}")).json()

    async def agreement(self, job_id: str) -> dict[str, Any]:
        """`GET /jobs/{job_id}/agreement`: the judge's agreement with the items' human grades
        (`{"job_id", "status", "score": {...}, "score_expected": {...} | None}`).
        `NotFoundError` (404) when no item has a human grade, or no such job."""
        return (await self._send("GET", f"/jobs/{job_id}/agreement")).json()

    async def retry(self, job_id: str, *, unscored: bool = False) -> dict[str, Any]:
        """`POST /jobs/{job_id}/retry`: grade a finished job's error items (and unscored ones
        with `unscored`) again; the job's view, queued. `ConflictError` (409) while it runs
        or when it has nothing to retry."""
        params = {"unscored": "true"} if unscored else {}
        return (await self._send("POST", f"/jobs/{job_id}/retry", params=params)).json()

    async def rubric(self, name: str) -> dict[str, Any] | None:
        """`GET /rubrics/{name}`, or None when the server does not have it."""
        try:
            return (await self._send("GET", f"/rubrics/{name}")).json()
        except EvalserveError:
            return None

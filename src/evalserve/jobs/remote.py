"""A client of a running evalserve's job API: submit, follow the SSE stream, fetch results.

Used by `evalserve evaluate --server URL`; works against any server speaking seed 000's
`POST /evaluate` + `GET /stream/{job_id}`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from evalserve.errors import InvalidInputError, NotFoundError, UpstreamError

__all__ = ["SSEMessage", "SSELineBuffer", "parse_sse", "is_final", "RemoteJobs"]


@dataclass
class SSEMessage:
    """One received server-sent event (`data` parsed as JSON when it is JSON)."""

    event: str
    data: Any
    id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterable[SSEMessage]:
    """Events from the lines of a `text/event-stream` (comments and pings skipped)."""
    event, data, event_id = "message", [], None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    value: Any = json.loads(text)
                except ValueError:
                    value = text
                yield SSEMessage(event, value, event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


class SSELineBuffer:
    """Feeds lines one at a time to `parse_sse` semantics (for async streams)."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def feed(self, line: str) -> list[SSEMessage]:
        self._lines.append(line)
        if line.strip():
            return []
        lines, self._lines = self._lines, []
        return list(parse_sse(lines))


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:300]
    if response.status_code == 404:
        raise NotFoundError(message)
    if response.status_code in (400, 409, 422):
        raise InvalidInputError(message)
    raise UpstreamError(f"{response.request.url} answered {response.status_code}: {message}")


class RemoteJobs:
    """Jobs on a server at `base_url` (bearer `token` if the server needs one)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                        timeout=httpx.Timeout(timeout, read=None))

    async def close(self) -> None:
        await self.client.aclose()

    async def submit(self, items: list[dict[str, Any]], rubric: str | dict | None = None,
                     **options: Any) -> dict[str, Any]:
        """`POST /evaluate`; the seed's answer (`job_id`, `stream_url`, ...)."""
        body: dict[str, Any] = {"items": items}
        if rubric is not None:
            body["rubric"] = rubric
        body.update({k: v for k, v in options.items() if v is not None})
        try:
            response = await self.client.post("/evaluate", json=body)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"cannot reach {self.client.base_url}: {exc}") from None
        _raise_for(response)
        return response.json()

    async def follow(self, job_id: str, last_event_id: int | None = None
                     ) -> AsyncIterator[SSEMessage]:
        """The job's events until `complete`, `cancelled` or a job-level `error`."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id else {}
        buffer = SSELineBuffer()
        async with self.client.stream("GET", f"/stream/{job_id}", headers=headers) as response:
            if not response.is_success:
                await response.aread()
                _raise_for(response)
            async for line in response.aiter_lines():
                for message in buffer.feed(line):
                    yield message
                    if is_final(message):
                        return

    async def results(self, job_id: str, fmt: str = "jsonl") -> str:
        response = await self.client.get(f"/jobs/{job_id}/results", params={"format": fmt})
        _raise_for(response)
        return response.text

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/jobs/{job_id}")
        _raise_for(response)
        return response.json()


def is_final(message: SSEMessage) -> bool:
    """Whether a stream ends after this event."""
    if message.event in ("complete", "cancelled"):
        return True
    return (message.event == "error" and isinstance(message.data, dict)
            and message.data.get("status") == "failed")

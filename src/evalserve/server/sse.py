"""Server-Sent Events of a job: stored events after the client's last id, then live ones.

Each event carries its per-job `id:`, so a client that reconnects with `Last-Event-ID` (or
`?last_event_id=`) misses nothing and sees nothing twice. A client that disconnects ends its
stream only; the job runs on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

from evalserve.errors import InvalidInputError
from evalserve.jobs.export import json_text
from evalserve.jobs.service import JobService

__all__ = ["job_event_stream", "parse_last_event_id", "MAX_EVENT_ID"]

#: Event ids are SQLite integers (int64); a larger id cannot be compared with them.
MAX_EVENT_ID = 2**63 - 1


def parse_last_event_id(query: str | None, header: str | None) -> int:
    """The id to resume after: the query parameter wins over the header; none means 0.
    `InvalidInputError` (422) for anything but an integer from 0 to `MAX_EVENT_ID`."""
    raw = query if query not in (None, "") else header
    if raw in (None, ""):
        return 0
    text = str(raw).strip()
    if len(text) > 20:  # int() of a huge digit string is itself costly
        raise InvalidInputError(
            f"Last-Event-ID {text[:24]!r}... is too long; send the integer `id:` of the last "
            "event received")
    try:
        value = int(text)
    except ValueError:
        raise InvalidInputError(
            f"Last-Event-ID {raw!r} is not an event id; send the integer `id:` of the last "
            "event received") from None
    if value < 0:
        raise InvalidInputError("Last-Event-ID must be 0 or a positive event id")
    if value > MAX_EVENT_ID:
        raise InvalidInputError(
            f"Last-Event-ID {value} is out of range: event ids are at most {MAX_EVENT_ID}; "
            "send the integer `id:` of the last event received")
    return value


async def job_event_stream(jobs: JobService, job_id: str, after_id: int,
                           ping_seconds: float) -> EventSourceResponse:
    """An SSE response following the job; `NotFoundError` (404) before streaming if unknown."""
    await jobs.get(job_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for event in jobs.follow(job_id, after_id):
            yield ServerSentEvent(data=json_text(event.data),
                                  event=event.type, id=str(event.id))

    return EventSourceResponse(events(), ping=ping_seconds,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

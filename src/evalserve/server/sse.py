"""Server-Sent Events of a job: stored events after the client's last id, then live ones.

Each event carries its per-job `id:`, so a client that reconnects with `Last-Event-ID` (or
`?last_event_id=`) misses nothing and sees nothing twice. A client that disconnects ends its
stream only; the job runs on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

from evalserve.errors import InvalidInputError
from evalserve.jobs.service import JobService

__all__ = ["job_event_stream", "parse_last_event_id"]


def parse_last_event_id(query: str | None, header: str | None) -> int:
    """The id to resume after: the query parameter wins over the header; none means 0."""
    raw = query if query not in (None, "") else header
    if raw in (None, ""):
        return 0
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidInputError(
            f"Last-Event-ID {raw!r} is not an event id; send the integer `id:` of the last "
            "event received") from None
    if value < 0:
        raise InvalidInputError("Last-Event-ID must be 0 or a positive event id")
    return value


async def job_event_stream(jobs: JobService, job_id: str, after_id: int,
                           ping_seconds: float) -> EventSourceResponse:
    """An SSE response following the job; `NotFoundError` (404) before streaming if unknown."""
    await jobs.get(job_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for event in jobs.follow(job_id, after_id):
            yield ServerSentEvent(data=json.dumps(event.data, ensure_ascii=False),
                                  event=event.type, id=str(event.id))

    return EventSourceResponse(events(), ping=ping_seconds,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

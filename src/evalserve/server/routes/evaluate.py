"""Seed 000: `POST /evaluate` (queue a job) and `GET /stream/{job_id}` (its results over SSE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from evalserve.server.deps import JobsDep, SettingsDep
from evalserve.server.protocol.jobs import EvaluateRequest, EvaluateResponse
from evalserve.server.sse import job_event_stream, parse_last_event_id

__all__ = ["router"]

router = APIRouter(tags=["evaluate"])


@router.post("/evaluate")
async def evaluate(body: EvaluateRequest, jobs: JobsDep) -> EvaluateResponse:
    """Validate and store the items, queue the job, answer at once with its stream URL."""
    submission = await jobs.submit(body.items, body.rubric, metrics=body.metrics,
                                   track=body.track)
    return EvaluateResponse.of(submission)


@router.get("/stream/{job_id}", response_class=EventSourceResponse)
async def stream(
    job_id: str,
    jobs: JobsDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Query(
        description="Resume after this event id (same as the Last-Event-ID header)")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """`batch_complete` events (results + progress), then `complete` (or `cancelled`/`error`)."""
    after = parse_last_event_id(last_event_id, last_event_id_header)
    return await job_event_stream(jobs, job_id, after, 15 * settings.sse_polling_interval)

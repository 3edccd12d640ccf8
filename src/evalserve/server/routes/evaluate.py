"""Seed 000: `POST /evaluate` (queue a job) and `GET /stream/{job_id}` (its results over SSE)."""

from __future__ import annotations

import functools
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from evalserve.server.costs import charge_items
from evalserve.server.deps import CallerDep, JobsDep, SettingsDep
from evalserve.server.protocol.jobs import EvaluateRequest, EvaluateResponse
from evalserve.server.sse import job_event_stream, parse_last_event_id

__all__ = ["router"]

router = APIRouter(tags=["evaluate"])


@router.post("/evaluate")
async def evaluate(body: EvaluateRequest, jobs: JobsDep, request: Request,
                   caller: CallerDep) -> EvaluateResponse:
    """Validate and store the items, queue the job (owned by the caller's key), answer at once
    with its stream URL. 429 when the caller already has `MAX_QUEUED_JOBS_PER_CALLER` queued
    jobs, 503 while the model failed to load or the job store cannot write. `judges` make a
    jury, `samples` grade each item several times, `model` picks the judge model
    (`evalserve.jobs.panel`)."""
    judges = None if body.judges is None else [j.model_dump() for j in body.judges]
    submission = await jobs.submit(
        body.items, body.rubric, metrics=body.metrics, track=body.track, owner=caller.key_id,
        charge=functools.partial(charge_items, request),  # ITEM_RATE_LIMIT, once valid
        judges=judges, aggregate=body.aggregate, min_successful=body.min_successful,
        samples=body.samples, reducer=body.reducer, temperature=body.temperature,
        model=body.model)
    return EvaluateResponse.of(submission)


@router.get("/stream/{job_id}", response_class=EventSourceResponse)
async def stream(
    job_id: str,
    jobs: JobsDep,
    settings: SettingsDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Query(
        description="Resume after this event id (same as the Last-Event-ID header)")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """`batch_complete` events (results + progress), then `complete` (or `cancelled`/`error`).
    404 for a job of another caller."""
    after = parse_last_event_id(last_event_id, last_event_id_header)
    await jobs.get(job_id, visible_to=caller.owner_filter)
    return await job_event_stream(jobs, job_id, after, 15 * settings.sse_polling_interval)

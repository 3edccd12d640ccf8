"""`GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/results`, `GET /jobs/{id}/agreement`,
`DELETE /jobs/{id}` (cancel), `POST /jobs/{id}/retry`.

A caller sees and manages only the jobs it submitted (another caller's job is a 404, like one
that does not exist); admin tokens and single-user mode see all (`Caller.owner_filter`)."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from evalserve.jobs.export import MEDIA_TYPES
from evalserve.jobs.models import JobStatus
from evalserve.jobs.reports import job_agreement, stored_report
from evalserve.server.deps import CallerDep, JobsDep
from evalserve.server.protocol.jobs import JobAgreement, JobList, JobView

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.get("/jobs")
async def list_jobs(
    jobs: JobsDep,
    caller: CallerDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many")] = 50,
) -> JobList:
    """The caller's jobs (an admin's: everyone's), newest first."""
    now = time.time()
    listed = await jobs.list(status, limit, visible_to=caller.owner_filter)
    return JobList(jobs=[JobView.of(j, now) for j in listed])


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, jobs: JobsDep, caller: CallerDep) -> JobView:
    """Status, counts `{scored, unscored, errors}`, timings, rubric, mean score and, once it
    completed, the report of one job."""
    job = await jobs.get(job_id, visible_to=caller.owner_filter)
    return JobView.of(job, time.time(), report=await stored_report(jobs.store, job))


@router.get("/jobs/{job_id}/agreement")
async def get_agreement(job_id: str, jobs: JobsDep, caller: CallerDep) -> JobAgreement:
    """The judge's agreement with the items' human grades (the report's `agreement`; for a
    job not completed, computed from the results stored so far). 404 when no item has a
    human grade, naming the field to send."""
    job = await jobs.get(job_id, visible_to=caller.owner_filter)
    return JobAgreement.of(job, await job_agreement(jobs.store, job))


@router.get("/jobs/{job_id}/results")
async def get_results(
    job_id: str,
    jobs: JobsDep,
    caller: CallerDep,
    format: Annotated[Literal["json", "jsonl", "csv"], Query(
        description="json (an object with `results`), jsonl or csv")] = "json",
) -> StreamingResponse:
    """Stored result records (also of running and cancelled jobs), by item order."""
    job, chunks = await jobs.export(job_id, format, visible_to=caller.owner_filter)
    headers = {"Content-Disposition": f'inline; filename="{job.id}.{format}"'}
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[format], headers=headers)


@router.delete("/jobs/{job_id}")
async def cancel_job(job_id: str, jobs: JobsDep, caller: CallerDep) -> JobView:
    """Cancel a queued or running job; results stored so far stay readable. 409 if finished."""
    return JobView.of(await jobs.cancel(job_id, visible_to=caller.owner_filter), time.time())


@router.post("/jobs/{job_id}/retry")
async def retry_job(
    job_id: str,
    jobs: JobsDep,
    caller: CallerDep,
    unscored: Annotated[bool, Query(
        description="Also grade the unscored items again, not only the error ones")] = False,
) -> JobView:
    """Queue a finished job's `error` items (and, with `unscored=true`, its unscored ones)
    for grading again; their new results replace the old ones. The job's stream goes on with
    the new batches and a new final event. 409 while the job is queued or running, or when it
    has nothing to retry."""
    job = await jobs.retry(job_id, unscored=unscored, visible_to=caller.owner_filter)
    return JobView.of(job, time.time())

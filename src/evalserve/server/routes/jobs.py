"""`GET /jobs`, `GET /jobs/{id}`, `GET /jobs/{id}/results`, `DELETE /jobs/{id}` (cancel)."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from evalserve.jobs.export import MEDIA_TYPES
from evalserve.jobs.models import JobStatus
from evalserve.server.deps import JobsDep
from evalserve.server.protocol.jobs import JobList, JobView

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.get("/jobs")
async def list_jobs(
    jobs: JobsDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many")] = 50,
) -> JobList:
    """Jobs, newest first."""
    now = time.time()
    return JobList(jobs=[JobView.of(j, now) for j in await jobs.list(status, limit)])


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, jobs: JobsDep) -> JobView:
    """Status, counts, timings, rubric and mean score of one job."""
    return JobView.of(await jobs.get(job_id), time.time())


@router.get("/jobs/{job_id}/results")
async def get_results(
    job_id: str,
    jobs: JobsDep,
    format: Annotated[Literal["json", "jsonl", "csv"], Query(
        description="json (an object with `results`), jsonl or csv")] = "json",
) -> StreamingResponse:
    """Stored result records (also of running and cancelled jobs), by item order."""
    job, chunks = await jobs.export(job_id, format)
    headers = {"Content-Disposition": f'inline; filename="{job.id}.{format}"'}
    return StreamingResponse(chunks, media_type=MEDIA_TYPES[format], headers=headers)


@router.delete("/jobs/{job_id}")
async def cancel_job(job_id: str, jobs: JobsDep) -> JobView:
    """Cancel a queued or running job; results stored so far stay readable. 409 if finished."""
    return JobView.of(await jobs.cancel(job_id), time.time())

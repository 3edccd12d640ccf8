"""A job's report (`evalserve.judge.report.job_report`): computed once when the job completes,
stored with it, and its agreement section read or computed on demand.

The computation runs in a worker thread: the bootstrap intervals of the agreement section
take seconds on 100k items, which must not stall the event loop serving every other request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from evalserve.errors import NotFoundError
from evalserve.jobs.export import iter_records
from evalserve.jobs.models import Job, JobStatus
from evalserve.jobs.store import JobStore

__all__ = ["compute_report", "stored_report", "job_agreement"]

log = logging.getLogger(__name__)


async def compute_report(job: Job, records: list[dict[str, Any]]) -> dict[str, Any]:
    """`job_report` of the job's records, in a worker thread. A report that cannot be made
    is `{"error": message}`, logged: it never fails the job."""
    from evalserve.judge.report import job_report

    try:
        return await asyncio.to_thread(job_report, records, job.rubric, job.options.to_dict())
    except Exception as exc:
        log.exception("the report of job %s could not be computed", job.id)
        return {"error": f"the report could not be computed: {exc}"}


async def stored_report(store: JobStore, job: Job) -> dict[str, Any] | None:
    """The report stored with a completed job; None for a job not completed (yet)."""
    if job.status is not JobStatus.COMPLETED:
        return None
    return await store.get_report(job.id)


async def job_agreement(store: JobStore, job: Job) -> dict[str, Any]:
    """The job's `agreement` section: the stored one of a completed job, else computed from
    the records stored so far (a running, cancelled or failed job). `NotFoundError` naming
    the field to send when no record has a human grade."""
    from evalserve.judge.report import agreement_report, human_field

    report = await stored_report(store, job)
    if report is not None:
        section = report.get("agreement")
    else:
        records = [r async for r in iter_records(store, job.id)]
        section = await asyncio.to_thread(agreement_report, records, job.rubric,
                                          job.options.to_dict())
    if section is None:
        field = human_field(job.rubric)
        raise NotFoundError(
            f"job {job.id} has no human grades to compare with: send each item's human "
            f"grade as a number in its {field!r} field (the human_field of rubric "
            f"{job.rubric_name!r})")
    return section

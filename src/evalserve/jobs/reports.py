"""A job's report (`evalserve.judge.report.job_report`): computed once when the job completes,
stored with it, and its agreement section read or computed on demand.

The records are read from the store in small pages (`job_records`: each page's decoding is a
few milliseconds on the event loop, which serves other requests between pages), and the
report is computed in a worker thread: on 100k items it takes a few seconds of vectorised
numpy (`benchmarks/report_speed.py`), which must not stall the loop serving every other
request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from evalserve.errors import NotFoundError
from evalserve.jobs.models import Job, JobStatus
from evalserve.jobs.store import JobStore

__all__ = ["compute_report", "job_records", "stored_report", "job_agreement", "RECORDS_PAGE"]

log = logging.getLogger(__name__)

#: Records read per store call while collecting a job's records for its report: small
#: enough that decoding one page never holds the event loop for long.
RECORDS_PAGE = 500


async def job_records(store: JobStore, job_id: str, page: int = RECORDS_PAGE
                      ) -> list[dict[str, Any]]:
    """Every stored record of the job, by item index, read `page` at a time."""
    records: list[dict[str, Any]] = []
    after = -1
    while True:
        rows = await store.records(job_id, after, page)
        if not rows:
            return records
        records.extend(r for _, r in rows)
        after = rows[-1][0]


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
        records = await job_records(store, job.id)
        section = await asyncio.to_thread(agreement_report, records, job.rubric,
                                          job.options.to_dict())
    if section is None:
        field = human_field(job.rubric)
        raise NotFoundError(
            f"job {job.id} has no human grades to compare with: send each item's human "
            f"grade as a number in its {field!r} field (the human_field of rubric "
            f"{job.rubric_name!r})")
    return section

"""Evaluation jobs: persistent, resumable, streamed.

`JobService` (submit, follow, read, cancel) over a `JobStore` (SQLite by default) and a
`JobRunner` that keeps the engine full. Other components extend jobs through
`evalserve.jobs.runner.ITEM_HOOKS` and `FINISH_HOOKS`.
"""

from __future__ import annotations

from evalserve.jobs.models import Job, JobEvent, JobOptions, JobStatus
from evalserve.jobs.runner import FINISH_HOOKS, ITEM_HOOKS, JobRunner
from evalserve.jobs.service import JobService, jobs_component

__all__ = ["Job", "JobEvent", "JobOptions", "JobStatus", "JobRunner", "JobService",
           "jobs_component", "ITEM_HOOKS", "FINISH_HOOKS"]

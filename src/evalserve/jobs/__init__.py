"""Evaluation jobs: persistent, resumable, streamed.

`JobService` (submit, follow, read, cancel) over a `JobStore` (SQLite by default) and a
`JobRunner` that keeps the engine full. Other components extend jobs with item and finish
hooks passed to the runner (`evalserve.jobs.extensions`).
"""

from __future__ import annotations

from evalserve.jobs.extensions import FinishHook, ItemHook
from evalserve.jobs.models import Job, JobEvent, JobOptions, JobStatus
from evalserve.jobs.runner import JobRunner
from evalserve.jobs.service import JobService

__all__ = ["Job", "JobEvent", "JobOptions", "JobStatus", "JobRunner", "JobService",
           "ItemHook", "FinishHook"]

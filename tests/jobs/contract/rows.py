"""Jobs and result rows for the contract tests."""

from __future__ import annotations

from evalserve.jobs.models import Job, JobStatus, ResultRow

__all__ = ["job", "row", "items"]


def job(job_id: str, created: float, total: int = 3, owner: str | None = None) -> Job:
    return Job(id=job_id, status=JobStatus.QUEUED, rubric_name="r", rubric={"name": "r"},
               total=total, created_at=created, owner=owner)


def row(job_id: str, idx: int, score: float | None = 3, status: str | None = None) -> ResultRow:
    status = status or ("scored" if score is not None else "unscored")
    return ResultRow(job_id, idx, f"i{idx}", status, score, {"id": f"i{idx}", "score": score})


def items(n: int) -> list[tuple[str, dict]]:
    return [(f"i{i}", {}) for i in range(n)]

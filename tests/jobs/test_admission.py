"""admit(): MAX_CONCURRENT_JOBS, and an owner with nothing running always gets one job."""

from __future__ import annotations

from evalserve.jobs.admission import admit
from evalserve.jobs.models import Job, JobStatus


def _job(job_id: str, owner: str | None) -> Job:
    return Job(job_id, JobStatus.QUEUED, "r", {}, 1, owner=owner)


def test_up_to_the_limit_in_order_least_busy_owners_first() -> None:
    queued = [_job("a2", "a"), _job("b1", "b"), _job("a3", "a")]
    chosen = admit(queued, [_job("a1", "a")], limit=3)
    assert [j.id for j in chosen] == ["b1", "a2"]


def test_beyond_the_limit_only_owners_with_nothing_running() -> None:
    running = [_job("a1", "a"), _job("a2", "a")]
    queued = [_job("a3", "a"), _job("b1", "b"), _job("b2", "b"), _job("c1", "c")]
    assert [j.id for j in admit(queued, running, limit=2)] == ["b1", "c1"]


def test_single_user_mode_keeps_the_exact_limit() -> None:
    queued = [_job(f"j{i}", None) for i in range(3)]
    assert [j.id for j in admit(queued, [_job("r", None)], limit=2)] == ["j0"]
    assert admit(queued, [_job("r", None), _job("s", None)], limit=2) == []

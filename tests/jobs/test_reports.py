"""A job's report and agreement read from the store (jobs/reports.py): the stored report of a
completed job, the agreement of an unfinished one computed from the results stored so far,
and the 404 naming the rubric's human grade field."""

from __future__ import annotations

import pytest

from evalserve.errors import NotFoundError
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.jobs.reports import compute_report, job_agreement, stored_report
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.jobs.store import StatusChange
from evalserve.judge.report import agreement_report, job_report

RUBRIC = {"name": "r", "scale": [1, 2, 3, 4, 5], "score_field": "score", "id_field": None,
          "feedback_field": "feedback"}


def _record(i: int, score: int, human: float | None) -> dict:
    out = {"id": f"i{i}", "score": score, "feedback": f"f{i}", "status": "scored"}
    if human is not None:
        out["human_score"] = human
    return out


async def _job(store: SQLiteJobStore, records: list[dict], rubric: dict = RUBRIC) -> Job:
    job = Job(id="j1", status=JobStatus.RUNNING, rubric_name=rubric["name"], rubric=rubric,
              total=len(records) + 2)
    await store.create_job(job, [(f"i{i}", {}) for i in range(job.total)])
    await store.commit([ResultRow("j1", i, r["id"], "scored", r["score"], r)
                        for i, r in enumerate(records)])
    return await store.get_job("j1")


async def test_a_running_job_has_the_agreement_of_the_results_stored_so_far(
        store: SQLiteJobStore) -> None:
    records = [_record(0, 3, 3.0), _record(1, 4, 5.0), _record(2, 2, None), _record(3, 1, 2.0)]
    job = await _job(store, records)
    assert await stored_report(store, job) is None
    assert await job_agreement(store, job) == agreement_report(records, RUBRIC)


async def test_a_completed_job_answers_its_stored_report(store: SQLiteJobStore) -> None:
    records = [_record(0, 3, 3.0), _record(1, 4, 5.0)]
    job = await _job(store, records)
    report = await compute_report(job, records)
    assert report == job_report(records, RUBRIC, job.options.to_dict())
    await store.commit(status=[StatusChange("j1", JobStatus.COMPLETED, finished_at=2.0,
                                            report=report)])
    done = await store.get_job("j1")
    assert await stored_report(store, done) == report
    assert await job_agreement(store, done) == report["agreement"]


async def test_no_human_grade_is_a_404_naming_the_rubrics_field(store: SQLiteJobStore) -> None:
    job = await _job(store, [_record(0, 3, None)], {**RUBRIC, "human_field": "nota_professor"})
    with pytest.raises(NotFoundError) as caught:
        await job_agreement(store, job)
    assert caught.value.message == (
        "job j1 has no human grades to compare with: send each item's human grade as a number "
        "in its 'nota_professor' field (the human_field of rubric 'r')")


async def test_a_report_that_cannot_be_made_is_an_error_not_a_failed_job(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import evalserve.judge.report as report_module

    def broken(*args: object) -> dict:
        raise RuntimeError("boom")

    monkeypatch.setattr(report_module, "job_report", broken)
    job = Job(id="j", status=JobStatus.RUNNING, rubric_name="r", rubric=RUBRIC, total=1)
    assert await compute_report(job, []) == {"error": "the report could not be computed: boom"}


async def test_job_records_reads_every_record_in_small_pages(store: SQLiteJobStore) -> None:
    """The report's records come 500 per store call (each page decoded on the event loop
    between others' requests), all of them, in item order."""
    from evalserve.jobs.reports import RECORDS_PAGE, job_records

    records = [_record(i, 1 + i % 5, float(1 + i % 5)) for i in range(1203)]
    job = await _job(store, records)
    limits: list[int] = []
    read = store.records

    async def spy(job_id: str, after_idx: int = -1, limit: int = 1000) -> list:
        limits.append(limit)
        return await read(job_id, after_idx, limit)

    store.records = spy  # type: ignore[method-assign]
    assert await job_records(store, job.id) == records
    assert RECORDS_PAGE == 500 and limits == [500, 500, 500, 500]  # 3 full pages, 1 empty

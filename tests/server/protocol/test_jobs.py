"""`/evaluate` and `/jobs` wire models: strict requests, and how a stored job is shown."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from evalserve.jobs.models import Job, JobOptions, JobStatus
from evalserve.jobs.service import Submission
from evalserve.server.protocol.jobs import EvaluateRequest, EvaluateResponse, JobView


def messages(data: dict[str, Any]) -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationError) as info:
        EvaluateRequest.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_minimal_request_defaults() -> None:
    body = EvaluateRequest.model_validate({"items": [{"id": 1}]})
    assert body.model_dump() == {"items": [{"id": 1}], "rubric": None, "metrics": [],
                                 "track": None, "judges": None, "aggregate": None,
                                 "min_successful": None, "samples": None, "reducer": None,
                                 "temperature": None, "model": None}


def test_jury_and_sampling_fields_are_read() -> None:
    body = EvaluateRequest.model_validate({
        "items": [], "judges": [{"name": "a"}, {"model": "m", "rubric": "judge-1-5"},
                                {"rubric": {"name": "x"}}],
        "aggregate": "majority", "min_successful": 2, "samples": 3, "reducer": "mode",
        "temperature": 0.5})
    assert [j.model_dump() for j in body.judges or []] == [
        {"model": None, "rubric": None, "name": "a"},
        {"model": "m", "rubric": "judge-1-5", "name": None},
        {"model": None, "rubric": {"name": "x"}, "name": None}]
    assert (body.aggregate, body.min_successful) == ("majority", 2)
    assert (body.samples, body.reducer, body.temperature) == (3, "mode", 0.5)


@pytest.mark.parametrize(("data", "loc"), [
    ({"aggregate": "vote"}, ("aggregate",)),
    ({"reducer": "max"}, ("reducer",)),
    ({"samples": 0}, ("samples",)),
    ({"samples": 21}, ("samples",)),
    ({"temperature": -0.1}, ("temperature",)),
    ({"temperature": 2.5}, ("temperature",)),
    ({"min_successful": 0}, ("min_successful",)),
    ({"judges": []}, ("judges",)),
    ({"judges": [{"modle": "m"}]}, ("judges", 0, "modle")),
    ({"judges": [{"name": ""}]}, ("judges", 0, "name")),
])
def test_bad_jury_and_sampling_fields_name_the_field(data: dict, loc: tuple) -> None:
    assert messages({"items": [], **data})[0][0] == loc


def test_rubric_by_name_or_inline() -> None:
    assert EvaluateRequest.model_validate({"items": [], "rubric": "r"}).rubric == "r"
    inline = {"name": "x", "fields": []}
    assert EvaluateRequest.model_validate({"items": [], "rubric": inline}).rubric == inline
    assert messages({"items": [], "rubric": 3})


def test_unknown_fields_are_refused_naming_them() -> None:
    assert messages({"items": [], "itmes": []}) == [(("itmes",), "Extra inputs are not permitted")]


def test_items_are_required_and_a_list() -> None:
    assert messages({}) == [(("items",), "Field required")]
    assert messages({"items": {"a": 1}})[0][0] == ("items",)


def test_track_is_checked_with_the_tracking_message() -> None:
    ok = EvaluateRequest.model_validate(
        {"items": [], "track": {"experiment": "e", "run_name": "r", "tags": {"k": "v"}}})
    assert ok.track == {"experiment": "e", "run_name": "r", "tags": {"k": "v"}}
    [(loc, msg)] = messages({"items": [], "track": {"tracking_uri": "http://x"}})
    assert loc == ("track",)
    assert "unknown keys ['tracking_uri']" in msg and "MLFLOW_TRACKING_URI" in msg
    [(_, msg)] = messages({"items": [], "track": {"experiment": "  "}})
    assert "track.experiment must be a non-empty string" in msg
    [(_, msg)] = messages({"items": [], "track": {"tags": {"k": 1}}})
    assert "track.tags must be an object of string values" in msg


def job(**fields: Any) -> Job:
    return Job(**{"id": "j1", "status": JobStatus.RUNNING, "rubric_name": "teacher-eval-ca",
                  "rubric": {}, "total": 4, **fields})


def test_evaluate_response_points_at_the_stream() -> None:
    response = EvaluateResponse.of(Submission(job(status=JobStatus.QUEUED), 12))
    assert response.model_dump() == {"job_id": "j1", "total_items": 4,
                                     "estimated_time_seconds": 12, "status": "queued",
                                     "stream_url": "/stream/j1"}


def test_job_view_counts_timings_and_urls() -> None:
    view = JobView.of(job(completed=4, scored=2, unscored=1, errors=1, score_sum=7.0,
                          created_at=0.0, started_at=10.0, finished_at=None,
                          options=JobOptions(metrics=["rouge"], track={"experiment": "e"})),
                      now=12.34567)
    assert view.counts.model_dump() == {"total": 4, "completed": 4, "scored": 2, "unscored": 1,
                                        "errors": 1, "percentage": 100.0}
    assert view.timings.created_at == "1970-01-01T00:00:00+00:00"
    assert view.timings.started_at == "1970-01-01T00:00:10+00:00"
    assert view.timings.finished_at is None
    assert view.timings.elapsed_seconds == 2.346  # running: up to now, 3 decimals
    assert view.mean_score == 3.5 and view.status == "running"
    assert (view.metrics, view.track) == (["rouge"], {"experiment": "e"})
    assert (view.stream_url, view.results_url) == ("/stream/j1", "/jobs/j1/results")


def test_job_view_of_a_finished_job_and_of_an_empty_one() -> None:
    done = JobView.of(job(status=JobStatus.FAILED, completed=1, started_at=5.0,
                          finished_at=6.5, error={"message": "boom"}), now=100.0)
    assert done.timings.elapsed_seconds == 1.5 and done.error == {"message": "boom"}
    assert done.counts.percentage == 25.0 and done.mean_score is None
    empty = JobView.of(job(total=0, status=JobStatus.COMPLETED), now=1.0)
    assert empty.counts.percentage == 100.0 and empty.timings.started_at is None
    assert empty.timings.elapsed_seconds == 0.0
    assert JobView.of(job(total=3, completed=1), now=0).counts.percentage == 33.3


def test_job_view_carries_the_report_and_the_agreement_url() -> None:
    """Issue 14: `GET /jobs/{id}` shows the job's report (null until it completes) and where
    its agreement with the human grades is."""
    report = {"agreement": {"score": {"qwk": 0.5}}}
    running = JobView.of(job(), now=0)
    assert running.report is None and running.agreement_url == "/jobs/j1/agreement"
    done = JobView.of(job(status=JobStatus.COMPLETED), now=0, report=report)
    assert done.model_dump()["report"] == report

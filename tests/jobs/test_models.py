"""What a job is: status values and final states, options round trip, mean score, elapsed."""

from __future__ import annotations

import json

import pytest

from evalserve.jobs.models import EventType, Job, JobEvent, JobOptions, JobStatus


def job(**fields: object) -> Job:
    base: dict[str, object] = {"id": "job-1", "status": JobStatus.QUEUED,
                               "rubric_name": "judge-1-5", "rubric": {"name": "judge-1-5"},
                               "total": 3}
    return Job(**{**base, **fields})  # type: ignore[arg-type]


def test_status_values_are_the_wire_strings() -> None:
    assert [s.value for s in JobStatus] == ["queued", "running", "completed", "cancelled",
                                            "failed"]
    assert JobStatus("running") is JobStatus.RUNNING
    assert JobStatus.FAILED == "failed" and str(JobStatus.FAILED) == "failed"
    assert json.dumps({"status": JobStatus.COMPLETED}) == '{"status": "completed"}'
    with pytest.raises(ValueError):
        JobStatus("done")


@pytest.mark.parametrize(("status", "finished"), [
    (JobStatus.QUEUED, False),
    (JobStatus.RUNNING, False),
    (JobStatus.COMPLETED, True),
    (JobStatus.CANCELLED, True),
    (JobStatus.FAILED, True),
])
def test_only_completed_cancelled_and_failed_are_final(status: JobStatus,
                                                        finished: bool) -> None:
    assert status.finished is finished


def test_event_names_are_the_seeds() -> None:
    assert (EventType.BATCH, EventType.COMPLETE) == ("batch_complete", "complete")
    assert (EventType.CANCELLED, EventType.ERROR) == ("cancelled", "error")


DEFAULTS = {"metrics": [], "track": None, "judges": None, "aggregate": "mean",
            "min_successful": None, "samples": 1, "reducer": "mean", "temperature": None,
            "model": None, "traceparent": None, "kind": "evaluate", "endpoint": None}


def test_options_default_to_no_metrics_and_no_tracking() -> None:
    assert JobOptions().to_dict() == DEFAULTS
    assert JobOptions.from_dict({}) == JobOptions()
    assert JobOptions.from_dict({"metrics": None, "track": None}) == JobOptions()


def test_options_round_trip_through_json() -> None:
    options = JobOptions(metrics=["rouge", "bertscore"], track={"experiment": "e1"})
    stored = json.loads(json.dumps(options.to_dict()))
    assert stored == {**DEFAULTS, "metrics": ["rouge", "bertscore"],
                      "track": {"experiment": "e1"}}
    assert JobOptions.from_dict(stored) == options


def test_jury_and_sampling_options_round_trip_through_json() -> None:
    """A resumed job grades with the jury and samples it was submitted with: they survive
    the store's JSON."""
    juror = {"name": "strict", "model": "scripted", "rubric_name": "judge-1-5",
             "rubric": {"name": "judge-1-5", "scale": [1, 2, 3, 4, 5]}}
    jury = JobOptions(judges=[juror], aggregate="majority", min_successful=1,
                      temperature=0.3)
    sampled = JobOptions(samples=5, reducer="mode", temperature=0.9)
    for options in (jury, sampled):
        stored = json.loads(json.dumps(options.to_dict()))
        assert JobOptions.from_dict(stored) == options
    assert jury.to_dict()["judges"] == [juror]
    assert (sampled.to_dict()["samples"], sampled.to_dict()["reducer"]) == (5, "mode")


def test_options_stored_before_juries_read_as_one_judge_one_sample() -> None:
    old = JobOptions.from_dict({"metrics": ["rouge"], "track": None})
    assert (old.judges, old.aggregate, old.min_successful) == (None, "mean", None)
    assert (old.samples, old.reducer, old.temperature) == (1, "mean", None)


def test_options_do_not_share_their_metrics_list() -> None:
    options = JobOptions(metrics=["rouge"])
    options.to_dict()["metrics"].append("bleu")
    assert options.metrics == ["rouge"]
    data = {"metrics": ["rouge"]}
    JobOptions.from_dict(data).metrics.append("bleu")
    assert data == {"metrics": ["rouge"]}
    first, second = job(), job()
    first.options.metrics.append("rouge")
    assert second.options.metrics == []


def test_a_new_job_has_zero_counters() -> None:
    new = job()
    assert (new.completed, new.scored, new.unscored, new.batches) == (0, 0, 0, 0)
    assert (new.score_sum, new.created_at) == (0.0, 0.0)
    assert (new.started_at, new.finished_at, new.error) == (None, None, None)
    assert new.options == JobOptions()


@pytest.mark.parametrize(("score_sum", "scored", "mean"), [
    (0.0, 0, None),
    (0.0, 2, 0.0),
    (9.0, 2, 4.5),
    (10.0, 3, 3.3333),
    (2.0, 3, 0.6667),
])
def test_mean_score_is_over_scored_items_rounded(score_sum: float, scored: int,
                                                 mean: float | None) -> None:
    assert job(score_sum=score_sum, scored=scored, unscored=5).mean_score == mean


@pytest.mark.parametrize(("started_at", "finished_at", "now", "elapsed"), [
    (None, None, 500.0, 0.0),  # queued: not started
    (100.0, None, 130.5, 30.5),  # running: until now
    (100.0, 112.0, 500.0, 12.0),  # finished: until the finish, whatever the time now
    (100.0, None, 90.0, 0.0),  # a clock that went back never gives a negative time
    (None, 112.0, 500.0, 0.0),  # cancelled before it started
])
def test_elapsed(started_at: float | None, finished_at: float | None, now: float,
                 elapsed: float) -> None:
    assert job(started_at=started_at, finished_at=finished_at).elapsed(now) == elapsed


def test_an_event_is_not_final_unless_said() -> None:
    event = JobEvent(job_id="job-1", id=1, type=EventType.BATCH, data={"results": []})
    assert event.final is False


def test_a_job_kind_picks_its_registered_grader() -> None:
    from evalserve.jobs.grading import JudgeKit
    from evalserve.jobs.models import Job, JobStatus

    kit = JudgeKit()
    seen = []
    kit.graders["batch"] = lambda engine, job: seen.append(job.id) or "batch grader"
    job = Job(id="j1", status=JobStatus.QUEUED, rubric_name="batch", rubric={}, total=0,
              options=JobOptions(kind="batch", endpoint="/v1/chat/completions"))
    assert kit.grader_for(object(), job) == "batch grader"
    assert seen == ["j1"]
    stored = JobOptions.from_dict(json.loads(json.dumps(job.options.to_dict())))
    assert (stored.kind, stored.endpoint) == ("batch", "/v1/chat/completions")

"""The tracked-job hooks, called the way the job runner calls them (no model, real MLflow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.errors import InvalidInputError
from evalserve.jobs.models import Job, JobOptions, JobStatus
from evalserve.settings import load_settings
from evalserve.tracking.jobs import (
    INPUT_KEY,
    TrackedJobLogger,
    remember_inputs,
    validate_track,
)
from tests.e2e.server import free_port
from tests.fakes import ScriptedEngine


def test_validate_track_accepts_names_and_tags() -> None:
    track = {"experiment": "exp", "run_name": "r1", "tags": {"team": "nlp"}}
    assert validate_track(track) == track


@pytest.mark.parametrize("track, message", [
    ({"tracking_uri": "http://elsewhere"}, "unknown keys ['tracking_uri']"),
    ({"experiment": ""}, "track.experiment must be a non-empty string"),
    ({"run_name": 3}, "track.run_name must be a non-empty string"),
    ({"tags": {"a": 1}}, "track.tags must be an object of string values"),
    ("exp", "track must be an object"),
])
def test_validate_track_says_what_is_wrong(track, message) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate_track(track)


def _job(rubric, track) -> Job:
    return Job(id="job-1234abcd", status=JobStatus.RUNNING, rubric_name=rubric.name,
               rubric=rubric.model_dump(mode="json"), total=4,
               options=JobOptions(track=track), started_at=1.0)


def test_remember_inputs_only_for_tracked_jobs(rubric) -> None:
    item = {"inputs": "q", "predictions": "a"}
    assert remember_inputs(_job(rubric, None), item, {}) == {}
    assert remember_inputs(_job(rubric, {"experiment": "x"}), item, {}) == {INPUT_KEY: item}


async def _run_hook(tmp_path: Path, env_uri: str | None, job: Job, records, **params) -> list:
    settings = load_settings(data_dir=tmp_path / "data", mlflow_tracking_uri=env_uri)
    hook = TrackedJobLogger(settings, ScriptedEngine(lambda r: "{}"), **params)
    assert hook.__name__ == "log_tracked_job"  # its name in a failed hook's `error` event
    return await hook(job, records)


async def test_finish_hook_logs_a_tracked_job(tmp_path: Path, rubric, records, items) -> None:
    from mlflow import MlflowClient

    job = _job(rubric, {"experiment": "jobs", "tags": {"team": "nlp"}})
    rows = [{**r, INPUT_KEY: i} for r, i in zip(records, items)]
    [event] = await _run_hook(tmp_path, None, job, rows, temperature=0.0, max_tokens=64)
    assert event["event"] == "tracking" and event["data"]["status"] == "logged"
    uri = f"sqlite:///{(tmp_path / 'data' / 'mlflow.db').resolve()}"
    assert event["data"]["tracking_uri"] == uri
    run = MlflowClient(uri).get_run(event["data"]["run_id"])
    assert run.info.run_name == "job-job-1234"
    assert run.data.tags["team"] == "nlp" and run.data.tags["job_id"] == job.id
    assert run.data.params["model"] == "scripted" and run.data.params["job_id"] == job.id
    assert (run.data.params["temperature"], run.data.params["max_tokens"]) == ("0.0", "64")
    assert run.data.metrics["unscored_count"] == 1


async def test_a_tracked_job_with_human_grades_logs_its_report(tmp_path: Path, rubric,
                                                              graded_records,
                                                              graded_items) -> None:
    """Issue 14 item 5 on the API path: a tracked job's run has the job report's metrics
    (`flat_metrics(job_report(records, job.rubric, job.options))`, the numbers
    `GET /jobs/{id}` shows), seed 004's `llm_judge_accuracy/v1/*`, `report.json` and the
    confusion-matrix heat map; the records' `input` keys are the table's, not the report's."""
    import json

    import numpy as np
    from mlflow import MlflowClient

    from evalserve.judge.report import flat_metrics, job_report

    job = _job(rubric, {"experiment": "graded"})
    rows = [{**r, INPUT_KEY: i} for r, i in zip(graded_records, graded_items, strict=True)]
    [event] = await _run_hook(tmp_path, None, job, rows)
    assert event["data"]["status"] == "logged", event
    client = MlflowClient(event["data"]["tracking_uri"])
    run_id = event["data"]["run_id"]
    metrics = client.get_run(run_id).data.metrics
    report = job_report(graded_records, job.rubric, job.options.to_dict())
    expected = flat_metrics(report)
    assert "agreement/qwk" in expected
    assert {k: metrics[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    scores = [r["score"] for r in graded_records if r["status"] == "scored"]
    assert metrics["llm_judge_accuracy/v1/mean"] == pytest.approx(float(np.mean(scores)))
    assert metrics["llm_judge_accuracy/v1/variance"] == pytest.approx(float(np.var(scores)))
    assert metrics["llm_judge_accuracy/v1/p90"] == pytest.approx(
        float(np.percentile(scores, 90)))
    paths = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.json", "confusion_matrix.png"} <= paths
    stored = client.download_artifacts(run_id, "report.json", str(tmp_path))
    assert json.loads(Path(stored).read_text(encoding="utf-8")) == report


async def test_finish_hook_reports_a_broken_store(tmp_path: Path, rubric, records) -> None:
    broken = f"http://127.0.0.1:{free_port()}"
    [event] = await _run_hook(tmp_path, broken, _job(rubric, {}), records)
    assert event["data"]["status"] == "failed" and broken in event["data"]["message"]


async def test_finish_hook_ignores_untracked_jobs(tmp_path: Path, rubric, records) -> None:
    assert await _run_hook(tmp_path, None, _job(rubric, None), records) == []
    assert not (tmp_path / "data" / "mlflow.db").exists()


@pytest.mark.parametrize(("tags", "message"), [
    ({"mlflow.user": "mallory"}, "track.tags.mlflow.user: tags starting with 'mlflow.' are "
                                 "MLflow's system tags (run source, user, note) and cannot be "
                                 "set; rename it"),
    ({"MLflow.Note.Content": "x"}, "track.tags.MLflow.Note.Content: tags starting with"),
    ({" mlflow.runName": "x"}, "track.tags. mlflow.runName: tags starting with"),
])
def test_track_tags_may_not_set_mlflow_system_tags(tags: dict, message: str) -> None:
    """Defect (issue 11, item 7): `track.tags` could overwrite MLflow system tags
    (`mlflow.*`) of the job's run."""
    with pytest.raises(InvalidInputError) as info:
        validate_track({"tags": tags})
    assert info.value.message.startswith(message) and info.value.status == 422


@pytest.mark.parametrize(("tags", "message"), [
    ({f"t{i}": "v" for i in range(101)}, "track.tags has 101 tags; at most 100"),
    ({"k" * 251: "v"}, "a tag needs a non-blank key of at most 250 characters"),
    ({"k": "v" * 8001}, "track.tags.k: a tag needs a non-blank key"),
    ({" ": "v"}, "a tag needs a non-blank key"),
])
def test_track_tags_are_bounded_as_mlflow_bounds_them(tags: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        validate_track({"tags": tags})


async def test_the_job_tags_of_a_run_cannot_be_forged(tmp_path: Path, rubric, records) -> None:
    """Defect (issue 11, item 7): `track.tags` were merged over the job's own `source` and
    `job_id` tags, so a run could claim another job's id."""
    from mlflow import MlflowClient

    job = _job(rubric, {"tags": {"job_id": "someone-else", "source": "cli", "team": "nlp"}})
    [event] = await _run_hook(tmp_path, None, job, records)
    run = MlflowClient(event["data"]["tracking_uri"]).get_run(event["data"]["run_id"])
    assert (run.data.tags["job_id"], run.data.tags["source"]) == (job.id, "job")
    assert run.data.tags["team"] == "nlp"


async def test_a_failed_tracking_event_shows_no_credentials(tmp_path: Path, rubric,
                                                           records) -> None:
    """Defect (issue 11, item 7): the `tracking` event of a failed run named
    `MLFLOW_TRACKING_URI` with its password and token."""
    port = free_port()
    secret = f"http://bob:hunter2@127.0.0.1:{port}/?access_token=abc"
    [event] = await _run_hook(tmp_path, secret, _job(rubric, {}), records)
    message = event["data"]["message"]
    assert event["data"]["status"] == "failed"
    assert f"MLflow tracking server http://***@127.0.0.1:{port}/ is unreachable" in message
    assert "hunter2" not in message and "abc" not in message


async def test_the_hook_logs_the_report_the_finisher_computed(
        tmp_path: Path, rubric, records, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report is computed once per job: the finisher's (on `job.report`) is what the run
    logs, not a second bootstrap over the same records."""
    import evalserve.judge.report as report_module

    def no_second_report(*args: object, **kwargs: object) -> dict:
        raise AssertionError("the report was computed again")

    monkeypatch.setattr(report_module, "job_report", no_second_report)
    job = _job(rubric, {"experiment": "jobs"})
    job.report = {"samples": {"k": 3, "mean_spread": 0.25}}
    [event] = await _run_hook(tmp_path, None, job, records, temperature=0.0, max_tokens=64)
    from mlflow import MlflowClient

    run = MlflowClient(event["data"]["tracking_uri"]).get_run(event["data"]["run_id"])
    assert run.data.metrics["samples/mean_spread"] == 0.25

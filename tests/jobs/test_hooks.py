"""The metrics item hook: per-item metrics next to the judge's score in job records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import InvalidInputError
from evalserve.jobs.hooks import MetricsHook, validate_job_metrics
from evalserve.jobs.models import Job, JobOptions, JobStatus
from evalserve.judge.factuality import build_metrics_service
from evalserve.metrics import readability, rouge_l
from evalserve.metrics.service import MetricsService
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import collect, running_service

QA = [
    {"id": "q1", "inputs": "What lowers blood pressure?",
     "predictions": "Regular exercise lowers blood pressure.",
     "reference": "Exercise and less salt lower blood pressure in adults."},
    {"id": "q2", "inputs": "What is the capital of France?",
     "predictions": "Paris is the capital.", "reference": "The capital of France is Paris."},
    {"id": "q3", "inputs": "Name a primary colour.", "predictions": "Red."},  # no reference
]


def script(request: GenerationRequest) -> str:
    schema = request.constraint.json_schema if request.constraint else None
    if schema and set(schema.get("properties", {})) == {"score"}:
        return '{"score": 3}'  # the factuality judge
    return json.dumps({"justification": "Accurate and concise.", "score": 4})


def service(settings: Settings, engine: ScriptedEngine) -> MetricsService:
    async def ready() -> ScriptedEngine:
        return engine

    return build_metrics_service(settings, ready)


async def test_scores_answer_against_reference(settings: Settings) -> None:
    hook = MetricsHook(service(settings, ScriptedEngine(script)))
    extra = await hook.score(QA[0], ["rouge_l", "readability"])
    expected_rouge = rouge_l([QA[0]["predictions"]], [QA[0]["reference"]]).scores[0].f1
    expected_read = readability([QA[0]["predictions"]]).scores[0]
    assert extra == {"metrics": {
        "rouge_l": pytest.approx(expected_rouge), "fkgl": pytest.approx(expected_read.fkgl),
        "smog": pytest.approx(expected_read.smog),
        "dale_chall": pytest.approx(expected_read.dale_chall)}}
    assert 0 < extra["metrics"]["rouge_l"] < 1


async def test_field_choice_and_rubric_language(settings: Settings) -> None:
    hook = MetricsHook(service(settings, ScriptedEngine(script)))
    item = {"respuesta": "La fotosíntesi fa servir la llum del sol.",
            "reference_answer": "Les plantes fan servir la llum del sol per fer menjar."}
    extra = await hook.score(item, ["readability", "rouge"], {"language": "ca"})
    expected = readability([item["respuesta"]], lang="ca").scores[0]
    assert extra["metrics"]["fkgl"] == pytest.approx(expected.fkgl)
    assert extra["metrics"]["rouge_l"] == pytest.approx(
        rouge_l([item["respuesta"]], [item["reference_answer"]]).scores[0].f1)
    # a language name pyphen does not know falls back to English
    english = await hook.score(item, ["readability"], {"language": "Catalan"})
    assert english["metrics"]["fkgl"] == pytest.approx(
        readability([item["respuesta"]], lang="en").scores[0].fkgl)


async def test_no_reference_or_no_answer_adds_nothing(settings: Settings) -> None:
    hook = MetricsHook(service(settings, ScriptedEngine(script)))
    assert await hook.score(QA[2], ["rouge_l"]) == {}
    assert await hook.score({"reference": "x", "inputs": "q"}, ["rouge_l"]) == {}


async def test_factuality_says_its_method(settings: Settings) -> None:
    engine = ScriptedEngine(script)
    hook = MetricsHook(service(settings, engine))
    extra = await hook.score(QA[1], ["factuality", "relevance"])
    assert extra["metrics"]["factuality"] == 0.5  # rating 3 -> (3 - 1) / 4
    assert 0 < extra["metrics"]["relevance"] <= 1
    assert extra["factuality_method"] == "llm_judge"
    assert len(engine.requests) == 1


def test_validate_job_metrics() -> None:
    assert validate_job_metrics(None) == [] and validate_job_metrics([]) == []
    assert validate_job_metrics(["ROUGE", "readability", "rouge_l"]) == ["rouge_l", "readability"]
    with pytest.raises(InvalidInputError, match="unknown metric 'bleu'.*rouge_l, readability"):
        validate_job_metrics(["rouge_l", "bleu"])


async def test_job_records_carry_metrics(tmp_path: Path, settings: Settings) -> None:
    engine = ScriptedEngine(script)
    hook = MetricsHook(service(settings, engine))
    async with running_service(tmp_path, engine, item_hooks=[hook], batch_size=2) as jobs:
        with_metrics = await jobs.submit(QA, "judge-1-5", metrics=["rouge_l", "readability"])
        events = await collect(jobs, with_metrics.job.id)
        plain = await jobs.submit(QA[:1], "judge-1-5")
        plain_events = await collect(jobs, plain.job.id)
    records = {r["id"]: r for e in events if e.type == "batch_complete"
               for r in e.data["results"]}
    assert set(records) == {"q1", "q2", "q3"}
    assert records["q1"]["score"] == 4 and "hook_errors" not in records["q1"]
    for key in ("q1", "q2"):
        item = next(i for i in QA if i["id"] == key)
        assert records[key]["metrics"]["rouge_l"] == pytest.approx(
            rouge_l([item["predictions"]], [item["reference"]]).scores[0].f1)
        assert set(records[key]["metrics"]) == {"rouge_l", "fkgl", "smog", "dale_chall"}
    assert "metrics" not in records["q3"]
    plain_record = plain_events[0].data["results"][0]
    assert "metrics" not in plain_record and plain_record["score"] == 4


async def test_the_hook_scores_only_jobs_that_ask_for_metrics(settings: Settings) -> None:
    """Called as the runner calls an item hook: `hook(job, item, record)`."""
    hook = MetricsHook(service(settings, ScriptedEngine(script)))

    def job(metrics: list[str]) -> Job:
        return Job(id="j", status=JobStatus.RUNNING, rubric_name="r", rubric={"language": "en"},
                   total=1, options=JobOptions(metrics=metrics))

    assert await hook(job([]), QA[0], {}) == {}
    extra = await hook(job(["rouge_l"]), QA[0], {"score": 4})
    assert extra["metrics"]["rouge_l"] == pytest.approx(
        rouge_l([QA[0]["predictions"]], [QA[0]["reference"]]).scores[0].f1)
    assert hook.__name__ == "metrics_hook"


async def test_submit_rejects_unknown_metrics_and_stores_nothing(tmp_path: Path) -> None:
    engine = ScriptedEngine(script)
    async with running_service(tmp_path, engine) as jobs:
        with pytest.raises(InvalidInputError, match="unknown metric 'bleu'"):
            await jobs.submit(QA, "judge-1-5", metrics=["rouge_l", "bleu"])
        assert await jobs.list() == []
        sub = await jobs.submit(QA[:1], "judge-1-5", metrics=["ROUGE", "readability"])
        assert sub.job.options.metrics == ["rouge_l", "readability"]

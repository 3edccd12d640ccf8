"""A jury that samples, on the real bundled model: a job of two judges (the built-in
`judge-1-5` and a stricter inline variant) grading each item twice, through the real job
service and store. Every sample's score is constrained to the scale, so every judge scores
every item, the records carry each judge's samples and spread, and the report has the jury
and samples sections. The 135M model's grades themselves mean nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.jobs.export import iter_records
from evalserve.jobs.service import JobService
from evalserve.judge import load_rubric
from evalserve.settings import load_settings
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.e2e

ITEMS = [{"id": "q1", "inputs": "What is the capital of France?", "predictions": "Paris.",
          "human_score": 5},
         {"id": "q2", "inputs": "What is 2+2?", "predictions": "It is 5.", "human_score": 1}]
STRICT = {**load_rubric("judge-1-5").model_dump(mode="json"), "name": "strict-1-5",
          "max_feedback_chars": 60,
          "instructions": "You are a strict judge. Rate the answer from 1 (wrong) to 5 "
                          "(right and complete) and justify it in one short sentence."}


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TransformersEngine]:
    settings = load_settings(model_cache_dir=MODEL_CACHE,
                             data_dir=tmp_path_factory.mktemp("jury-engine"))
    eng = TransformersEngine.from_settings(settings)
    await eng.start()
    yield eng
    await eng.close()


async def test_a_sampling_jury_scores_every_item_on_the_bundled_model(
        engine: TransformersEngine, tmp_path: Path) -> None:
    settings = load_settings(model_cache_dir=MODEL_CACHE, data_dir=tmp_path,
                             max_new_tokens=40)
    service = JobService.from_settings(settings, engine)
    await service.start()
    try:
        rubric = {**load_rubric("judge-1-5").model_dump(mode="json"), "max_feedback_chars": 60}
        sub = await service.submit(ITEMS, rubric, judges=[{"name": "plain"},
                                                          {"rubric": STRICT}],
                                   samples=2, temperature=0.8, min_successful=2)
        final = [e async for e in service.follow(sub.job.id)][-1]
        records = [r async for r in iter_records(service.store, sub.job.id)]
    finally:
        await service.close()
    assert final.type == "complete", final.data
    assert [r["status"] for r in records] == ["scored", "scored"]
    for record in records:
        assert [j["judge"] for j in record["judges"]] == ["plain", "strict-1-5"]
        for entry in record["judges"]:
            assert entry["model"] == engine.model_id and entry["status"] == "scored", entry
            assert len(entry["samples"]) == 2
            assert all(s in (1, 2, 3, 4, 5) for s in entry["samples"])
            assert entry["score"] == sum(entry["samples"]) / 2  # the mean of its samples
        assert record["score"] == sum(j["score"] for j in record["judges"]) / 2
        assert (record["reducer"], record["aggregate"]) == ("mean", "mean")
    report = final.data["report"]
    assert report["jury"]["judges"] == ["plain", "strict-1-5"]
    assert set(report["samples"]["per_judge"]) == {"plain", "strict-1-5"}
    assert report["samples"]["k"] == 2 and report["agreement"]["score"]["n"] == 2
    json.dumps(report, allow_nan=False)

"""Juries and the judge model through `POST /evaluate` on a scripted engine serving two models
(as a router does): each judge's requests name its model, a model whose calls fail leaves the
item `scored` or `error` as `min_successful` says, and a model the engine does not serve is a
422 listing the available ones."""

from __future__ import annotations

import pytest

from evalserve.errors import EngineError
from evalserve.settings import Settings
from tests.fakes import MultiModelEngine
from tests.jobs.helpers import answer, item
from tests.server.openai_app import make_settings, running_app
from tests.server.test_sse import parse_events


def down(request: object) -> str:
    raise EngineError("upstream small answered 503")


def engine(small=lambda r: answer(1, "small"), large=lambda r: answer(4, "large")):  # noqa: ANN001, ANN201
    return MultiModelEngine({"small": small, "large": large})


async def _job(settings: Settings, fake: MultiModelEngine, body: dict) -> tuple[list, dict]:
    async with running_app(make_settings(settings, item_retries=0), fake) as (_, client):
        answer_ = await client.post("/evaluate", json={"items": [item(0), item(1)], **body})
        assert answer_.status_code == 200, answer_.text
        events = parse_events((await client.get(answer_.json()["stream_url"])).text)
        results = (await client.get(f"/jobs/{answer_.json()['job_id']}/results")).json()
    return results["results"], events[-1]["data"]


async def test_each_judge_of_a_jury_asks_its_model(settings: Settings) -> None:
    fake = engine()
    records, final = await _job(settings, fake, {"judges": [{"model": "small"},
                                                            {"model": "large"}]})
    assert [r["nota"] for r in records] == [2.5, 2.5]
    assert [[j["model"] for j in r["judges"]] for r in records] == [["small", "large"]] * 2
    assert sorted(r.model for r in fake.requests) == ["large", "large", "small", "small"]
    assert final["report"]["jury"]["per_judge"]["teacher-eval-ca-1"]["mean_score"] == 1


@pytest.mark.parametrize(("min_successful", "status"), [(1, "scored"), (2, "error")])
async def test_a_model_whose_calls_fail_honours_min_successful(
        settings: Settings, min_successful: int, status: str) -> None:
    records, final = await _job(settings, engine(small=down), {
        "judges": [{"model": "small"}, {"model": "large"}], "min_successful": min_successful})
    assert [r["status"] for r in records] == [status, status]
    assert final["scored" if status == "scored" else "errors"] == 2
    for record in records:
        assert [(j["model"], j["status"]) for j in record["judges"]] == [
            ("small", "error"), ("large", "scored")]
        assert record["judges"][0]["reason"] == "upstream small answered 503"
        if status == "error":
            assert record["nota"] is None
            assert record["reason"] == ("1 of 2 judges scored the item; the job needs "
                                        "min_successful=2")
        else:
            assert record["nota"] == 4.0


async def test_an_unknown_judge_model_is_a_422_listing_the_served_ones(
        settings: Settings) -> None:
    async with running_app(settings, engine()) as (_, client):
        refused = await client.post("/evaluate", json={"items": [item(0)],
                                                       "judges": [{"model": "huge"}]})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == (
        "judges[0].model 'huge' is not served here; served models: small, large (or "
        "null for the job's own)")


async def test_the_jobs_model_judges_it_and_an_unknown_one_is_a_422(
        settings: Settings) -> None:
    fake = engine()
    records, _ = await _job(settings, fake, {"model": "large"})
    assert [r["nota"] for r in records] == [4, 4]
    assert {r.model for r in fake.requests} == {"large"}
    async with running_app(settings, engine()) as (_, client):
        refused = await client.post("/evaluate", json={"items": [item(0)], "model": "huge"})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == (
        "model 'huge' is not served here; served models: small, large (or null for the "
        "engine's own)")

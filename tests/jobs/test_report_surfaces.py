"""Every surface shows the same report for the same job (issue 14 item 5): a scripted judge
whose grade is a known function of the item's human grade (human + 1, at most 5), some items
without a human grade; the SSE `complete` event, `GET /jobs/{id}`, `GET /jobs/{id}/agreement`,
the JSON export and the job store all carry the numbers `metrics.agreement` gives."""

from __future__ import annotations

import re

import httpx
from sklearn.metrics import cohen_kappa_score

from evalserve.judge.report import flat_metrics
from evalserve.metrics.agreement import agreement
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine, request_text
from tests.jobs.helpers import answer, item
from tests.server.openai_app import running_app
from tests.server.test_sse import parse_events

HUMAN = [0, 1, 2, 3, 4, 5, 5, 5, None, None]
"""The items' human grades (None: the item has none); the judge gives min(5, human + 1)."""
JUDGE = [1, 2, 3, 4, 5, 5, 5, 5, 2, 2]


def _script(request: object) -> str:
    found = re.search(r"\(h=(\d)\)", request_text(request))
    return answer(min(5, int(found.group(1)) + 1) if found else 2)


def _items() -> list[dict]:
    out = []
    for i, human in enumerate(HUMAN):
        if human is None:
            out.append(item(i))
        else:
            out.append(item(i, respuesta=f"Resposta (h={human}).", human_score=human))
    return out


async def _run(client: httpx.AsyncClient) -> tuple[str, list[dict]]:
    body = (await client.post("/evaluate", json={"items": _items()}))
    assert body.status_code == 200, body.text
    job_id = body.json()["job_id"]
    stream = await client.get(f"/stream/{job_id}")
    return job_id, parse_events(stream.text)


async def test_every_surface_shows_the_same_agreement(settings: Settings) -> None:
    async with running_app(settings, ScriptedEngine(_script)) as (app, client):
        job_id, events = await _run(client)
        view = (await client.get(f"/jobs/{job_id}")).json()
        section = (await client.get(f"/jobs/{job_id}/agreement")).json()
        exported = (await client.get(f"/jobs/{job_id}/results")).json()
        stored = await app.state.evalserve.components.jobs.store.get_report(job_id)

    complete = events[-1]
    assert complete["event"] == "complete"
    report = complete["data"]["report"]
    assert view["report"] == report == stored == exported["report"]
    assert section == {"job_id": job_id, "status": "completed",
                       "score": report["agreement"]["score"], "score_expected": None}
    assert view["agreement_url"] == f"/jobs/{job_id}/agreement"

    score = report["agreement"]["score"]
    ids = [f"A{i:03d}" for i in range(len(HUMAN))]
    expected = agreement(JUDGE, HUMAN, scale=[0, 1, 2, 3, 4, 5], ids=ids).to_dict()
    assert {k: v for k, v in score.items() if k != "disagreements"} == {
        k: v for k, v in expected.items() if k != "disagreements"}
    # known in advance: 8 paired items, 3 exact (human 5), all within one step
    assert (score["n"], score["items"], score["missing_human"]) == (8, 10, 2)
    assert (score["exact"], score["adjacent"], score["mae"]) == (3 / 8, 1.0, 5 / 8)
    assert score["qwk"] == cohen_kappa_score(HUMAN[:8], JUDGE[:8], weights="quadratic",
                                             labels=[0, 1, 2, 3, 4, 5])
    assert [d["id"] for d in score["disagreements"]] == ids[:5]
    assert {d["feedback"] for d in score["disagreements"]} == {"Bon treball per a 3r ESO."}
    assert flat_metrics(report)["agreement/qwk"] == score["qwk"]
    assert [r.get("human_score") for r in exported["results"]] == [
        None if h is None else float(h) for h in HUMAN]


async def test_a_job_without_human_grades_has_an_empty_report_and_no_agreement(
        settings: Settings) -> None:
    async with running_app(settings, ScriptedEngine(lambda r: answer(3))) as (_, client):
        body = (await client.post("/evaluate", json={"items": [item(0), item(1)]})).json()
        events = parse_events((await client.get(body["stream_url"])).text)
        view = (await client.get(f"/jobs/{body['job_id']}")).json()
        missing = await client.get(f"/jobs/{body['job_id']}/agreement")
    assert events[-1]["data"]["report"] == {} == view["report"]
    assert missing.status_code == 404
    assert missing.json() == {"error": {
        "message": f"job {body['job_id']} has no human grades to compare with: send each "
                   "item's human grade as a number in its 'human_score' field (the "
                   "human_field of rubric 'teacher-eval-ca')",
        "type": "invalid_request_error", "code": "not_found"}}

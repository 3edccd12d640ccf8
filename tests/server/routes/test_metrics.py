"""Seed 002 metric routes on the ASGI app with a scripted engine (the real model: e2e)."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from evalserve.engines.base import GenerationRequest, TokenLogprob
from evalserve.generation.summary import SUMMARY_INSTRUCTION
from evalserve.metrics import readability, rouge_l
from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine, request_text
from tests.judge.test_factuality import SYSTEM_PROMPT

ORIGINALS = [
    "The patient took 20 mg of aspirin every day for two weeks and the fever went down.",
    "Regular exercise lowers blood pressure in adults with mild hypertension.",
]
GENERATED = [
    "The patient took aspirin daily for two weeks. The fever went down.",
    "Exercise helps adults lower their blood pressure.",
]
HUMANS = [
    "The patient took a small dose of aspirin each day and the fever dropped.",
    "Adults with slightly high blood pressure can lower it by exercising.",
]


def judge_script(request: GenerationRequest) -> str:
    if request.constraint is not None:
        return '{"score": 4}'
    return "  A short plain summary.  "


@pytest.fixture
async def engine() -> ScriptedEngine:
    return ScriptedEngine(judge_script)


@pytest.fixture
async def client(settings: Settings, engine: ScriptedEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def assert_envelope(resp: httpx.Response, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "code"}
    for word in words:
        assert word in error["message"], error["message"]
    return error["message"]


async def test_rouge_matches_library_and_accepts_seed_names(client: httpx.AsyncClient) -> None:
    expected = rouge_l(GENERATED, ORIGINALS)
    resp = await client.post(
        "/metrics/rouge", json={"predictions": GENERATED, "references": ORIGINALS}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["f1"] == pytest.approx([s.f1 for s in expected.scores])
    assert body["precision"] == pytest.approx([s.precision for s in expected.scores])
    assert body["mean"]["f1"] == pytest.approx(expected.mean.f1)
    assert body["languages"] == ["en", "en"] and body["recipe"] == "standard"

    seed_style = await client.post(
        "/metrics/rouge", json={"texts_generated": GENERATED, "texts_original": ORIGINALS}
    )
    assert seed_style.json()["f1"] == body["f1"]


async def test_rouge_chinese_auto(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/metrics/rouge",
        json={"predictions": ["今天天气很好"], "references": ["今天天气不错"], "lang": "auto"},
    )
    body = resp.json()
    assert body["languages"] == ["zh"]
    assert body["f1"] == pytest.approx([rouge_l(["今天天气很好"], ["今天天气不错"], "zh").mean.f1])
    assert 0 < body["f1"][0] < 1


async def test_readability_matches_library(client: httpx.AsyncClient) -> None:
    texts = GENERATED + ["El paciente tomó aspirina. La fiebre bajó después de dos semanas."]
    resp = await client.post("/metrics/readability", json={"texts": texts, "lang": "es"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    expected = readability(texts, lang="es")
    assert body["fkgl"] == pytest.approx([s.fkgl for s in expected.scores])
    assert body["smog"] == pytest.approx([s.smog for s in expected.scores])
    assert body["dale_chall"] == pytest.approx([s.dale_chall for s in expected.scores])
    assert body["mean"]["fkgl"] == pytest.approx(expected.mean.fkgl)
    assert body["lang"] == "es"


async def test_relevance_identical_texts_score_one(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/metrics/relevance",
        json={"texts_original": ORIGINALS, "texts_generated": [ORIGINALS[0], GENERATED[1]]},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["f1"]) == len(body["precision"]) == len(body["recall"]) == 2
    assert body["f1"][0] == pytest.approx(1.0, abs=1e-4)
    assert 0 < body["f1"][1] < 0.999
    assert body["mean"]["f1"] == pytest.approx(sum(body["f1"]) / 2)


async def test_factuality_falls_back_to_llm_judge(
    client: httpx.AsyncClient, engine: ScriptedEngine
) -> None:
    resp = await client.post(
        "/metrics/factuality", json={"texts_original": ORIGINALS, "texts_generated": GENERATED}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body == {"scores": [0.75, 0.75], "mean": 0.75, "method": "llm_judge"}
    judged = [r for r in engine.requests if r.constraint is not None]
    assert len(judged) == 2
    assert judged[0].messages[0]["content"] == SYSTEM_PROMPT
    assert ORIGINALS[0] in request_text(judged[0]) and GENERATED[0] in request_text(judged[0])
    assert judged[0].temperature == 0.0


async def test_factuality_weights_ratings_by_probability(settings: Settings) -> None:
    # P(5) = 0.6, P(4) = 0.3, P(1) = 0.1 -> rating 4.3 -> (4.3 - 1) / 4 = 0.825
    digit = TokenLogprob("5", math.log(0.6), [("5", math.log(0.6)), ("4", math.log(0.3)),
                                             ("1", math.log(0.1)), ("2", float("-inf"))])
    steps = [TokenLogprob('{"', 0.0), TokenLogprob("score", 0.0), TokenLogprob('":', 0.0),
             TokenLogprob(" ", 0.0), digit, TokenLogprob("}", 0.0)]
    engine = ScriptedEngine(lambda r: '{"score": 5}', logprobs=steps)
    app = build_app(settings, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            resp = await c.post("/metrics/factuality",
                                json={"texts_original": ["a b"], "texts_generated": ["a"]})
    assert resp.json()["scores"] == [pytest.approx(0.825)]


async def test_loss_with_humans(client: httpx.AsyncClient) -> None:
    payload = {
        "texts_original": ORIGINALS,
        "texts_human": HUMANS,
        "texts_generated": GENERATED,
        "weights": [0.25, 0.25, 0.2, 0.15, 0.15],
    }
    resp = await client.post("/loss", json=payload)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["factuality_method"] == "llm_judge"
    assert len(body["losses"]) == 2 and body["loss"] == pytest.approx(sum(body["losses"]) / 2)
    assert list(body["weights"]) == ["relevance", "factuality", "fkgl", "smog", "dale_chall"]
    assert body["weights"]["fkgl"] == 0.2
    # the judge rates every text 0.75: factuality never falls short of the human target
    assert body["metrics"]["factuality"] == [0.75, 0.75]
    assert body["terms"]["factuality"] == [0.0, 0.0]
    expected_fkgl = [s.fkgl for s in readability(GENERATED).scores]
    assert body["metrics"]["fkgl"] == pytest.approx(expected_fkgl)
    human_fkgl = [s.fkgl for s in readability(HUMANS).scores]
    assert body["targets"]["fkgl"]["mean"] == pytest.approx(sum(human_fkgl) / 2)


async def test_loss_with_targets_and_without(client: httpx.AsyncClient, tmp_path: Path) -> None:
    targets = {m: {"mean": 0.5, "std": 0.1} for m in ("relevance", "factuality")}
    targets |= {m: {"mean": 8.0, "std": 2.0} for m in ("fkgl", "smog", "dale_chall")}
    resp = await client.post("/loss", json={
        "texts_original": ORIGINALS, "texts_generated": GENERATED, "targets": targets})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["targets"]["fkgl"] == {"mean": 8.0, "std": 2.0}
    assert body["terms"]["fkgl"] == pytest.approx(
        [abs(v - 8.0) / 2.0 for v in body["metrics"]["fkgl"]])

    missing = await client.post("/loss", json={
        "texts_original": ORIGINALS, "texts_generated": GENERATED})
    assert_envelope(missing, 422, "texts_human", "LOSS_TARGETS")


async def test_loss_uses_loss_targets_setting(settings: Settings, tmp_path: Path) -> None:
    targets = {m: {"mean": 0.9, "std": 0.05} for m in ("relevance", "factuality")}
    targets |= {m: {"mean": 6.0, "std": 1.0} for m in ("fkgl", "smog", "dale_chall")}
    path = tmp_path / "targets.json"
    path.write_text(json.dumps(targets))
    app = build_app(settings.model_copy(update={"loss_targets": path}),
                    engine=ScriptedEngine(judge_script))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            resp = await c.post("/loss", json={
                "texts_original": ORIGINALS[:1], "texts_generated": GENERATED[:1]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["targets"]["smog"] == {"mean": 6.0, "std": 1.0}
    # factuality 0.75 against a target of 0.9 with std 0.05: (0.9 - 0.75) / 0.05 = 3
    assert body["terms"]["factuality"] == [pytest.approx(3.0)]


@pytest.mark.parametrize(
    ("path", "payload", "words"),
    [
        ("/metrics/relevance", {"texts_original": ["a", "b"], "texts_generated": ["a"]},
         ["texts_original", "texts_generated", "2", "1"]),
        ("/metrics/factuality", {"texts_original": [], "texts_generated": []},
         ["texts_original"]),
        ("/metrics/relevance", {"texts_original": "a", "texts_generated": ["a"]},
         ["texts_original", "list"]),
        ("/metrics/readability", {"texts": []}, ["texts"]),
        ("/metrics/readability", {"texts": ["hola"], "lang": "xx"}, ["lang", "xx"]),
        ("/metrics/readability", {}, ["texts", "required"]),
        ("/metrics/rouge", {"predictions": ["a"]}, ["references"]),
        ("/metrics/rouge", {"predictions": ["a"], "references": ["a"], "lang": "fr"}, ["lang"]),
        ("/loss", {"texts_original": ["a"], "texts_human": ["b"], "texts_generated": ["c"],
                   "weights": [0.5, 0.5]}, ["weights", "5"]),
        ("/loss", {"texts_original": ["a"], "texts_human": ["b"], "texts_generated": ["c"],
                   "weights": [0.5, 0.5, 0.2, -0.1, -0.1]}, ["weights", ">= 0"]),
        ("/loss", {"texts_original": ["a"], "texts_human": ["b"], "texts_generated": ["c"],
                   "weights": [0.2, 0.2, 0.2, 0.2, 0.1]}, ["weights", "sum to 1"]),
        ("/loss", {"texts_original": ["a"], "texts_human": ["b", "c"],
                   "texts_generated": ["c"]}, ["texts_human", "texts_original"]),
        ("/generate", {"text": "   "}, ["text"]),
        ("/generate", {"texto": "hola"}, ["text", "prompt"]),
        ("/generate", {"text": "a", "prompt": "b"}, ["text", "prompt"]),
        ("/generate", {"prompt": "Hi", "stream": True}, ["/v1/completions"]),
    ],
)
async def test_bad_payloads_get_422_envelope(
    client: httpx.AsyncClient, path: str, payload: dict, words: list[str]
) -> None:
    resp = await client.post(path, json=payload)
    assert_envelope(resp, 422, *words)


async def test_bad_targets_get_422(client: httpx.AsyncClient) -> None:
    resp = await client.post("/loss", json={
        "texts_original": ["a"], "texts_generated": ["b"], "targets": {"fkgl": {"mean": 1}}})
    assert_envelope(resp, 422, "relevance", "calibrate")


async def test_generate_uses_seed_sampling_settings(
    client: httpx.AsyncClient, engine: ScriptedEngine, settings: Settings
) -> None:
    resp = await client.post("/generate", json={"text": "Texto médico a resumir."})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["summary"] == body["generated_text"] == "A short plain summary."
    assert body["model"] == "scripted" and body["finish_reason"] == "stop"
    request = engine.requests[-1]
    assert request.messages[0]["content"] == SUMMARY_INSTRUCTION
    assert request.messages[1]["content"] == "Texto médico a resumir."
    assert request.max_tokens == settings.max_new_tokens
    assert (request.temperature, request.top_p, request.repetition_penalty) == (
        settings.temperature, settings.top_p, settings.repeat_penalty)

    resp = await client.post("/generate", json={"text": "x", "max_new_tokens": 7,
                                                "temperature": 0})
    assert resp.status_code == 200
    assert engine.requests[-1].max_tokens == 7 and engine.requests[-1].temperature == 0


@pytest.mark.parametrize(("path", "payload"), [
    ("/metrics/readability", {"texts": ["One.", "Two.", "Three."]}),
    ("/metrics/rouge", {"predictions": ["a", "b", "c"], "references": ["a", "b", "c"]}),
    ("/metrics/relevance", {"texts_original": ORIGINALS + ORIGINALS[:1],
                            "texts_generated": GENERATED + GENERATED[:1]}),
    ("/metrics/factuality", {"texts_original": ORIGINALS + ORIGINALS[:1],
                             "texts_generated": GENERATED + GENERATED[:1]}),
    ("/loss", {"texts_original": ORIGINALS + ORIGINALS[:1],
               "texts_generated": GENERATED + GENERATED[:1],
               "texts_human": HUMANS + HUMANS[:1]}),
])
async def test_texts_per_request_are_capped(settings: Settings, path: str,
                                            payload: dict) -> None:
    """Regression: a metrics request could hold any number of texts."""
    app = build_app(settings.model_copy(update={"max_texts_per_request": 2}),
                    engine=ScriptedEngine(judge_script))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as c:
            resp = await c.post(path, json=payload)
    assert_envelope(resp, 413, "3 texts in one request", "the limit is 2",
                    "MAX_TEXTS_PER_REQUEST")

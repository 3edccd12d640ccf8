"""Seed 002's metric service end to end: the real server, the real bundled model, seed payloads,
and the seed's client functions against it."""

from __future__ import annotations

import json

import httpx
import pytest

from evalserve import client
from evalserve.metrics import readability, rouge_l
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

# seed 002 is Spanish: plain-language summaries of medical texts
O = [  # noqa: E741 - the seed's names
    "El paciente recibió 20 mg de aspirina al día durante dos semanas y la fiebre bajó.",
    "El ejercicio regular reduce la presión arterial en adultos con hipertensión leve.",
]
H = ["El paciente tomó aspirina cada día y la fiebre bajó.",
     "Hacer ejercicio baja la presión arterial."]
G = ["El paciente tomó aspirina. La fiebre bajó.", "El ejercicio baja la presión."]
WEIGHTS = [0.25, 0.25, 0.2, 0.15, 0.15]


def post(server: ServerProcess, path: str, body: dict) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=300)


def test_rouge_and_readability_match_the_library(live_server: ServerProcess) -> None:
    rouge = post(live_server, "/metrics/rouge", {"texts_generated": G, "texts_original": O})
    assert rouge.status_code == 200, rouge.text
    expected = rouge_l(G, O)
    assert rouge.json()["f1"] == pytest.approx([s.f1 for s in expected.scores])
    assert rouge.json()["mean"]["f1"] == pytest.approx(expected.mean.f1)

    read = post(live_server, "/metrics/readability", {"texts": G + H, "lang": "es"})
    assert read.status_code == 200, read.text
    body = read.json()
    lib = readability(G + H, lang="es")
    assert body["fkgl"] == pytest.approx([s.fkgl for s in lib.scores])
    assert body["smog"] == pytest.approx([s.smog for s in lib.scores])
    assert body["dale_chall"] == pytest.approx([s.dale_chall for s in lib.scores])
    assert body["mean"]["dale_chall"] == pytest.approx(lib.mean.dale_chall)


def test_relevance_of_identical_texts_is_one(live_server: ServerProcess) -> None:
    resp = post(live_server, "/metrics/relevance",
                {"texts_original": O, "texts_generated": [O[0], G[1]]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["f1"]) == 2
    assert body["f1"][0] == pytest.approx(1.0, abs=1e-4)
    assert 0.0 < body["f1"][1] < 0.999


def test_factuality_and_loss_by_the_llm_judge(live_server: ServerProcess) -> None:
    fact = post(live_server, "/metrics/factuality", {"texts_original": O, "texts_generated": G})
    assert fact.status_code == 200, fact.text
    body = fact.json()
    assert body["method"] == "llm_judge"
    assert len(body["scores"]) == 2 and all(0.0 <= s <= 1.0 for s in body["scores"])
    assert body["mean"] == pytest.approx(sum(body["scores"]) / 2)

    resp = post(live_server, "/loss", {"texts_original": O, "texts_human": H,
                                       "texts_generated": G, "weights": WEIGHTS})
    assert resp.status_code == 200, resp.text
    loss = resp.json()
    assert loss["factuality_method"] == "llm_judge"
    assert len(loss["losses"]) == 2 and loss["loss"] >= 0
    # greedy judging: the generated texts get the same factuality as from the route above
    assert loss["metrics"]["factuality"] == pytest.approx(body["scores"])
    assert list(loss["weights"].values()) == WEIGHTS


def test_generate_returns_a_summary(live_server: ServerProcess) -> None:
    resp = post(live_server, "/generate", {"text": O[0] + " " + O[1]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["summary"].strip() and body["summary"] == body["generated_text"]
    assert 0 < body["usage"]["completion_tokens"] <= 48  # MAX_NEW_TOKENS of live_server


def test_generate_takes_vllm_legacy_prompts(live_server: ServerProcess) -> None:
    """Seed 004 checks its server with vLLM's legacy `/generate`: prompt in, prompt+text out."""
    resp = post(live_server, "/generate", {"prompt": "Столица Германии?", "max_tokens": 12})
    assert resp.status_code == 200, resp.text
    (text,) = resp.json()["text"]
    assert text.startswith("Столица Германии?")
    assert len(text) > len("Столица Германии?")


def test_bad_payloads_name_the_field(live_server: ServerProcess) -> None:
    resp = post(live_server, "/metrics/factuality",
                {"texts_original": O, "texts_generated": G[:1]})
    assert resp.status_code == 422
    message = resp.json()["error"]["message"]
    assert "texts_original" in message and "texts_generated" in message
    resp = post(live_server, "/loss", {"texts_original": O, "texts_human": H,
                                       "texts_generated": G, "weights": [0.5, 0.5, 0, 0, 0.1]})
    assert resp.status_code == 422 and "sum to 1" in resp.json()["error"]["message"]


def test_seed_client_against_the_server(live_server: ServerProcess,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSERVE_URL", live_server.url)
    loss = client.getLoss(O, H, G, weights=WEIGHTS)
    assert loss["factuality_method"] == "llm_judge" and len(loss["losses"]) == 2
    assert client.getRelevance(O, O)["f1"] == pytest.approx([1.0, 1.0], abs=1e-4)
    assert client.getFactuality(O, G)["method"] == "llm_judge"
    assert client.getReadability(G)["fkgl"] == pytest.approx(
        [s.fkgl for s in readability(G).scores])
    # the seed's two-list form, with no targets anywhere: a clear error from the server
    with pytest.raises(client.EvalserveHTTPError, match="texts_human") as info:
        client.getLoss(O, G, weights=WEIGHTS)
    assert info.value.status == 422


def test_job_items_with_a_reference_get_metrics(live_server: ServerProcess) -> None:
    items = [
        {"id": "q1", "inputs": "¿Qué bajó la fiebre?", "predictions": G[0], "reference": O[0]},
        {"id": "q2", "inputs": "¿Qué baja la presión?", "predictions": G[1]},  # no reference
    ]
    bad = post(live_server, "/evaluate", {"items": items, "rubric": "judge-1-5",
                                          "metrics": ["rouge_l", "bleu"]})
    assert bad.status_code == 422 and "unknown metric 'bleu'" in bad.json()["error"]["message"]

    resp = post(live_server, "/evaluate", {"items": items, "rubric": "judge-1-5",
                                           "metrics": ["rouge_l", "readability"]})
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["job_id"]
    streamed: dict[str, dict] = {}
    event = None
    with httpx.stream("GET", f"{live_server.url}/stream/{job_id}", timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "batch_complete":
                for record in json.loads(line.split(":", 1)[1])["results"]:
                    streamed[record["id"]] = record
            elif line.startswith("data:") and event in ("complete", "error", "cancelled"):
                break
    assert event == "complete"
    assert set(streamed) == {"q1", "q2"}
    metrics = streamed["q1"]["metrics"]
    assert metrics["rouge_l"] == pytest.approx(rouge_l([G[0]], [O[0]]).scores[0].f1)
    assert metrics["fkgl"] == pytest.approx(readability([G[0]]).scores[0].fkgl)
    assert "metrics" not in streamed["q2"]
    stored = httpx.get(f"{live_server.url}/jobs/{job_id}/results", timeout=30).json()["results"]
    assert {r["id"]: r.get("metrics") for r in stored} == {"q1": metrics, "q2": None}

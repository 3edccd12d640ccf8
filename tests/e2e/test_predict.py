"""Seed 003's grader contract on the real server and the real bundled model.

One batch-mode server (with a warm-up file) is started for this module and watched from its
first answer, the way graders poll `GET /`; the shared `live_server` covers BATCH_MODE=0.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from evalserve.cli.main import app
from evalserve.generation.predict import collapse_tail_repetition
from evalserve.metrics.rouge import rouge_l
from tests.conftest import MODEL_CACHE
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORDS = ["apple", "river", "tiger", "piano", "rocket", "garden", "silver", "candle", "forest",
         "hammer", "orange", "planet", "castle", "dragon", "pencil", "window", "bottle",
         "marble", "violin", "helmet", "jacket", "ladder", "mirror", "needle", "pepper",
         "rabbit", "saddle", "tunnel", "wallet", "zipper", "anchor", "basket", "carpet",
         "dollar", "engine", "falcon", "guitar", "harbor", "island", "jungle", "kettle",
         "lemon", "magnet", "napkin", "oyster", "parrot", "quartz", "ribbon", "salmon", "turkey"]
CJK = re.compile("[\u4e00-\u9fff]")


@dataclass
class BatchServer:
    server: ServerProcess
    first_answer: tuple[int, dict]
    ready_answer: tuple[int, dict]


@pytest.fixture(scope="module")
def batch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchServer]:
    """BATCH_MODE=1, greedy, with a warm-up file; `GET /` polled from the process start."""
    root = tmp_path_factory.mktemp("predict")
    warmup = root / "warmup.jsonl"
    warmup.write_text((EXAMPLES / "qa_zh.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    server = ServerProcess(root / "data", env={
        "BATCH_MODE": "1", "TEMPERATURE": "0", "MAX_NEW_TOKENS": "12", "MAX_MODEL_LEN": "256",
        "MAX_FIELD_CHARS": "4000", "WARMUP_FILE": str(warmup), "WARMUP_MAX_PROMPTS": "8",
        "WARMUP_MAX_TOKENS": "4", "LOG_LEVEL": "info",
    }).start(wait=False)
    try:
        first = _poll_root(server, until=lambda status: True)
        ready = _poll_root(server, until=lambda status: status == 200)
        yield BatchServer(server, first, ready)
    finally:
        server.stop()


def _poll_root(server: ServerProcess, until, timeout: float = 180) -> tuple[int, dict]:
    """Poll `GET /` from the process start until `until(status)`; the first such answer."""

    def answer() -> tuple[int, dict] | None:
        try:
            resp = httpx.get(server.url + "/", timeout=5)
        except httpx.TransportError:
            return None
        return (resp.status_code, resp.json()) if until(resp.status_code) else None

    return server.wait_for(answer, timeout, f"{server.url}/ giving the awaited status",
                           interval=0.02)


def _post(server: ServerProcess, body: object) -> httpx.Response:
    return httpx.post(server.url + "/predict", json=body, timeout=300)


def test_root_is_loading_until_model_and_warmup_are_ready(batch_server: BatchServer) -> None:
    assert batch_server.first_answer == (503, {"status": "loading"})
    assert batch_server.ready_answer == (200, {"status": "batch"})
    assert "warm-up: 8 prompts answered in" in batch_server.server.log_path.read_text()
    started = time.perf_counter()
    resp = httpx.get(batch_server.server.url + "/", timeout=5)
    assert resp.json() == {"status": "batch"}
    assert time.perf_counter() - started < 1.0


def test_a_batch_of_50_comes_back_complete_and_in_order(batch_server: BatchServer) -> None:
    prompts = [f"Repeat exactly this word and nothing else: {w}" for w in WORDS]
    resp = _post(batch_server.server, {"prompt": prompts})
    assert resp.status_code == 200, resp.text
    answers = resp.json()["response"]
    assert isinstance(answers, list) and len(answers) == 50
    assert all(isinstance(a, str) for a in answers)
    # Order: an answer names its own word far more often than its neighbour's.
    own = sum(w in a.lower() for w, a in zip(WORDS, answers))
    for shift in (1, -1):
        shifted = sum(WORDS[(i + shift) % 50] in a.lower() for i, a in enumerate(answers))
        assert own >= 30 and shifted < own / 3, (own, shifted, answers)


def test_chinese_prompts_single_and_batch(batch_server: BatchServer) -> None:
    questions = ["中国的首都是哪座城市？", "请用一句话介绍长城。", "一年有几个月？"]
    batch = _post(batch_server.server, {"prompt": questions})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["response"]
    assert len(answers) == 3 and all(isinstance(a, str) and a for a in answers)
    assert all(a == a.strip() and collapse_tail_repetition(a) == a for a in answers)
    single = _post(batch_server.server, {"prompt": questions[0]}).json()
    assert isinstance(single["response"], str) and single["response"]
    empty = _post(batch_server.server, {"prompt": []})
    assert (empty.status_code, empty.json()) == (200, {"response": []})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"question": "hi"}, "prompt: Field required"),
        ({"prompt": 42}, "got int"),
        ({"prompt": ["a", ["nested"]]}, "item 1 must be a string, got a list"),
        ({"prompt": ["a", None]}, "item 1 must be a string, got NoneType"),
        ({"prompt": "x" * 4001}, "4001 characters; the limit is 4000 (MAX_FIELD_CHARS)"),
        ({"prompt": ["ok", "word " * 700]}, "(MAX_MODEL_LEN - 1): shorten it"),
    ],
)
def test_malformed_bodies_get_a_4xx_envelope(batch_server: BatchServer, body: object,
                                             fragment: str) -> None:
    resp = _post(batch_server.server, body)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert fragment in error["message"]
    assert error["code"] == "invalid_input"


def test_single_mode_root_and_predict(live_server: ServerProcess) -> None:
    root = httpx.get(live_server.url + "/", timeout=5)
    assert (root.status_code, root.json()) == (200, {"status": "ok"})
    resp = _post(live_server, {"prompt": "What is the capital of France?"})
    assert resp.status_code == 200, resp.text
    answer = resp.json()["response"]
    assert isinstance(answer, str) and answer and answer == answer.strip()
    refused = _post(live_server, {"prompt": ["a", "b"]})
    assert refused.status_code == 422
    assert "BATCH_MODE=1" in refused.json()["error"]["message"]


def test_bench_against_the_server_matches_the_metrics_module(batch_server: BatchServer,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app,
        ["bench", "predict", str(EXAMPLES / "qa_zh.jsonl"), "--url", batch_server.server.url,
         "--batch", "--limit", "6", "--out", str(out), "--json"],
        env={"MODEL_CACHE_DIR": str(MODEL_CACHE)},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == summary["items"] == 6 and summary["requests"] == 1
    preds = [r["prediction"] for r in rows]
    refs = [r["answer"] for r in rows]
    assert summary["rouge_l"]["mean"] == pytest.approx(
        rouge_l(preds, refs, lang="auto").mean.f1)
    assert summary["rouge_l_grader"]["mean"] == pytest.approx(
        rouge_l(preds, refs, recipe="grader").mean.f1)
    assert [r["rouge_l"] for r in rows] == [
        s.f1 for s in rouge_l(preds, refs, lang="auto").scores]
    assert summary["token_counter"] == "tokenizer of SmolLM2-135M-Instruct"
    assert summary["output_tokens"] == sum(r["tokens"] for r in rows) > 0

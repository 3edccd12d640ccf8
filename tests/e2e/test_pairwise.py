"""Pairwise judging on the real bundled model (in-process TransformersEngine): every order's
verdict is constrained to the labels, so every pair is judged, and the records and the summary
have the contract's keys. The 135M model's verdicts themselves mean nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.judge import Judge, load_rubric
from evalserve.judge.pairwise import pairwise_summary
from evalserve.settings import load_settings
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.e2e

PAIRS = [
    {"id": "p1", "question": "What is the capital of France?",
     "response_a": "Paris is the capital of France.", "response_b": "Bananas are yellow.",
     "system_a": "good", "system_b": "bad"},
    {"id": "p2", "question": "What is 2+2?", "response_a": "5", "response_b": "2+2 is 4.",
     "system_a": "bad", "system_b": "good"},
    {"id": "p3", "question": "Name a mammal that can fly.", "response_a": "The bat.",
     "response_b": "A bat, the only mammal capable of true flight.", "system_a": "good",
     "system_b": "verbose"},
]
KEYS = {"id", "score", "feedback", "status", "verdict", "verdicts", "consistent",
        "first_position_wins", "verdict_probs", "system_a", "system_b"}


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TransformersEngine]:
    settings = load_settings(model_cache_dir=MODEL_CACHE,
                             data_dir=tmp_path_factory.mktemp("pairwise-engine"))
    eng = TransformersEngine.from_settings(settings)
    await eng.start()
    yield eng
    await eng.close()


async def test_pairwise_preference_verdicts_always_parse(engine: TransformersEngine) -> None:
    rubric = load_rubric("pairwise-preference")
    judge = Judge(engine, rubric, seed=0)
    grades = await asyncio.gather(*(judge.grade(p, i) for i, p in enumerate(PAIRS)))
    records = [g.record(rubric) for g in grades]
    for record in records:
        assert record["status"] == "scored", record
        assert KEYS <= set(record)
        assert record["verdicts"]["ab"] in ("A", "B", "tie")
        assert record["verdicts"]["ba"] in ("A", "B", "tie")
        assert record["verdict"] == (record["verdicts"]["ab"] if record["consistent"] else "tie")
        assert record["score"] == {"A": 1.0, "tie": 0.5, "B": 0.0}[record["verdict"]]
        assert 0 <= record["first_position_wins"] <= 2
        probs = record["verdict_probs"]
        assert probs is not None and set(probs) == {"A", "B", "tie"}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert 0.0 <= record["score_expected"] <= 1.0
        assert len(record["feedback"]) <= rubric.max_feedback_chars
    summary = pairwise_summary(records)
    assert summary is not None and summary["pairs"] == 3 and summary["orders_judged"] == 6
    assert {row["system"] for row in summary["leaderboard"]} == {"good", "bad", "verbose"}
    json.dumps(summary, allow_nan=False)


async def test_prometheus_relative_results_parse(engine: TransformersEngine) -> None:
    """The regex keeps the 135M model to `... [RESULT] A|B` (feedback bounded short here)."""
    spec = {**load_rubric("prometheus-relative").model_dump(), "max_feedback_chars": 60}
    rubric = load_rubric(spec)
    item = {"id": "r1", "instruction": "Name a prime number.", "response_a": "8",
            "response_b": "7 is prime."}
    record = (await Judge(engine, rubric, seed=0).grade(item)).record(rubric)
    assert record["status"] == "scored", record
    assert record["verdicts"]["ab"] in ("A", "B") and record["verdicts"]["ba"] in ("A", "B")
    assert record["verdict_probs"]["tie"] == 0.0

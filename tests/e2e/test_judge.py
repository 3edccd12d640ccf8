"""The judge on the real bundled model (in-process TransformersEngine), and `GET /rubrics`
through the real server.

Every grade of the built-in JSON rubrics must be scored: the schema constraint makes the answer
parse, the token budget fits the bounded feedback, and the score probabilities come from the
logprobs at the score token.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from evalserve.engines.transformers.engine import TransformersEngine
from evalserve.judge import Grade, Judge, Rubric, load_rubric
from evalserve.settings import load_settings
from tests.conftest import MODEL_CACHE
from tests.e2e.server import ServerProcess

TEACHER_ITEMS = [
    {"id_alumno": f"A{i:03d}", "curso": curso, "consigna": consigna, "respuesta": respuesta}
    for i, (curso, consigna, respuesta) in enumerate([
        ("3r ESO", "Explica la fotosíntesi",
         "La fotosíntesi és quan les plantes fan menjar amb la llum del sol."),
        ("3r ESO", "Explica la fotosíntesi", "No ho sé."),
        ("1r ESO", "Què és un volcà?", "Una muntanya que treu lava quan entra en erupció."),
        ("2n ESO", "Per què plou?", "Perquè el vapor d'aigua es condensa als núvols i cau."),
        ("4t ESO", "Explica la Revolució Francesa", "El 1789 el poble va prendre la Bastilla."),
        ("3r ESO", "Resumeix el conte {La Caputxeta}", "Una nena va a veure l'àvia i un llop."),
    ])
]

JUDGE_ITEMS = [
    {"inputs": q, "predictions": a} for q, a in [
        ("What is the capital of France?", "Paris is the capital of France."),
        ("Who is the current president of the USA?", "Bananas are yellow."),
        ("Tell me about quantum physics.",
         "Quantum physics describes matter and energy at the atomic scale."),
        ("What is the primary function of a CPU?", "It executes instructions."),
        ("What is 2+2?", "5"),
        ("Name a mammal that can fly.", "The bat."),
    ]
] + [
    {"question": "What is the boiling point of water at sea level?", "answer": "100 °C",
     "id": "alias-1"},
    {"inputs": "Translate 'gato' to English.", "predictions": "cat", "reference": "cat"},
]


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TransformersEngine]:
    settings = load_settings(model_cache_dir=MODEL_CACHE,
                             data_dir=tmp_path_factory.mktemp("judge-engine"))
    eng = TransformersEngine.from_settings(settings)
    await eng.start()
    yield eng
    await eng.close()


async def _grade_all(judge: Judge, items: list[dict]) -> list[Grade]:
    for i, item in enumerate(items):
        judge.validate_item(item, i)
    return list(await asyncio.gather(*(judge.grade(item, i) for i, item in enumerate(items))))


def _check_scored(grades: list[Grade], rubric: Rubric) -> None:
    low, high = rubric.scale_min, rubric.scale_max
    for grade in grades:
        assert grade.status == "scored", (grade.reason, grade.raw)
        assert grade.score in rubric.scale
        assert grade.feedback and grade.feedback.strip()
        assert len(grade.feedback) <= rubric.max_feedback_chars
        assert grade.score_expected is not None and low <= grade.score_expected <= high
        assert grade.score_probs is not None and set(grade.score_probs) == set(rubric.scale)
        assert sum(grade.score_probs.values()) == pytest.approx(1.0, abs=1e-4)
        # the chosen (greedy) score is the most probable one at the score token
        assert grade.score_probs[grade.score] == max(grade.score_probs.values())


async def test_teacher_eval_ca_grades_every_item(engine: TransformersEngine) -> None:
    rubric = load_rubric("teacher-eval-ca")
    grades = await _grade_all(Judge(engine, rubric), TEACHER_ITEMS)
    _check_scored(grades, rubric)
    records = [g.record(rubric) for g in grades]
    assert [r["id_alumno"] for r in records] == [it["id_alumno"] for it in TEACHER_ITEMS]
    assert all(set(r) >= {"id_alumno", "nota", "feedback", "status"} for r in records)


async def test_judge_1_5_grades_every_item(engine: TransformersEngine) -> None:
    rubric = load_rubric("judge-1-5")
    grades = await _grade_all(Judge(engine, rubric), JUDGE_ITEMS)
    _check_scored(grades, rubric)
    assert grades[6].item_id == "alias-1"
    assert {"score", "justification"} <= set(grades[0].record(rubric))


async def test_cut_answers_are_scored_in_a_second_step(engine: TransformersEngine) -> None:
    """A budget far too small for the feedback (as with an upstream ignoring maxLength)."""
    rubric = load_rubric("judge-1-5")
    judge = Judge(engine, rubric, max_tokens=12)
    grades = await _grade_all(judge, JUDGE_ITEMS[:2])
    for grade in grades:
        assert grade.status == "scored" and grade.score in rubric.scale
        assert grade.feedback
        assert grade.score_probs is not None
        assert sum(grade.score_probs.values()) == pytest.approx(1.0, abs=1e-4)


async def test_prometheus_format_is_regex_constrained(engine: TransformersEngine) -> None:
    base = load_rubric("prometheus-absolute").model_dump()
    rubric = load_rubric({**base, "name": "prometheus-short", "max_feedback_chars": 80})
    items = [{"instruction": "What is the capital of France?", "response": "Paris."},
             {"instruction": "What is 2+2?", "response": "22", "reference_answer": "4"}]
    grades = await _grade_all(Judge(engine, rubric), items)
    for grade in grades:
        assert grade.status == "scored", (grade.reason, grade.raw)
        assert grade.score in rubric.scale and grade.feedback
        assert grade.score_expected is not None and 1 <= grade.score_expected <= 5


def test_get_rubrics_lists_the_builtins(live_server: ServerProcess) -> None:
    response = httpx.get(live_server.url + "/rubrics", timeout=10)
    assert response.status_code == 200
    rubrics = {r["name"]: r for r in response.json()["rubrics"]}
    assert {"teacher-eval-ca", "judge-1-5", "prometheus-absolute"} <= set(rubrics)
    teacher = rubrics["teacher-eval-ca"]
    assert teacher["fields"] == ["id_alumno", "curso", "consigna", "respuesta"]
    assert teacher["scale"] == [0, 1, 2, 3, 4, 5] and teacher["language"] == "ca"
    assert teacher["output_fields"] == ["nota", "feedback"]
    assert rubrics["judge-1-5"]["scale"] == [1, 2, 3, 4, 5]


def test_get_rubric_by_name_and_404(live_server: ServerProcess) -> None:
    body = httpx.get(live_server.url + "/rubrics/judge-1-5", timeout=10).json()
    assert body["name"] == "judge-1-5" and body["fields"] == ["inputs", "predictions"]
    assert "{inputs}" in body["template"] and len(body["examples"]) == 2
    assert body["hash"] == load_rubric("judge-1-5").hash()
    missing = httpx.get(live_server.url + "/rubrics/nope", timeout=10)
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "not_found" and "nope" in error["message"]
    assert "teacher-eval-ca" in error["message"]

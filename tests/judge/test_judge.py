"""Judge and Grade with a scripted engine: constrained JSON, cut answers, retries, free text,
logprob scores, item validation."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from evalserve.engines.base import (
    CompletionOutput,
    GenerationRequest,
    GenerationResult,
    TokenLogprob,
)
from evalserve.errors import EngineError, EngineUnavailableError, InvalidInputError
from evalserve.judge import Judge, load_rubric, rubric_from_prompt_file
from evalserve.judge.judge import feedback_token_budget
from evalserve.judge.prompts import output_schema
from tests.fakes import ScriptedEngine

TEACHER = load_rubric("teacher-eval-ca")
JUDGE15 = load_rubric("judge-1-5")
ITEM = {"id_alumno": "A001", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
        "respuesta": "Les plantes fan menjar amb la llum."}


class PlainEngine(ScriptedEngine):
    """An engine that enforces no constraints and returns no logprobs (a plain upstream)."""

    supports_constraints = False
    supports_logprobs = False


def _out(text: str, finish: str = "stop", logprobs: list[TokenLogprob] | None = None):
    return CompletionOutput(text=text, finish_reason=finish,  # type: ignore[arg-type]
                            completion_tokens=len(text) // 3 + 1, logprobs=logprobs)


def _score_logprobs(before: str, score: str, probs: dict[str, float]) -> list[TokenLogprob]:
    top = [(tok, math.log(p)) for tok, p in probs.items()]
    return [TokenLogprob(before, -0.01), TokenLogprob(score, math.log(probs[score]), top),
            TokenLogprob("}", -0.01)]


async def test_scored_json_record_uses_rubric_names() -> None:
    engine = ScriptedEngine(lambda r: '{"feedback": "Bon treball per a 3r ESO.", "nota": 4}')
    grade = await Judge(engine, TEACHER).grade(ITEM, 3)
    assert grade.record(TEACHER) == {"id_alumno": "A001", "nota": 4,
                                     "feedback": "Bon treball per a 3r ESO.", "status": "scored"}
    request = engine.requests[0]
    assert request.constraint is not None
    assert request.constraint.json_schema == output_schema(TEACHER)
    assert request.max_tokens == feedback_token_budget(TEACHER) == 300 // 2 + 32
    assert request.temperature == 0.0 and request.logprobs == 20
    assert request.messages is not None and request.messages[-1]["content"].startswith("Curs: 3r")


async def test_logprobs_give_expected_score_and_probs() -> None:
    before = '{"feedback": "Bé", "nota": '
    probs = {"4": 0.6, "3": 0.3, "5": 0.05, '"': 0.05}
    engine = ScriptedEngine(lambda r: _out(before + "4}", logprobs=_score_logprobs(
        before, "4", probs)))
    grade = await Judge(engine, TEACHER).grade(ITEM)
    assert grade.score == 4
    assert grade.score_probs == pytest.approx(
        {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.3 / 0.95, 4: 0.6 / 0.95, 5: 0.05 / 0.95}, abs=1e-6)
    assert grade.score_expected == pytest.approx((0.9 + 2.4 + 0.25) / 0.95, abs=1e-5)
    record = grade.record(TEACHER)
    assert record["score_expected"] == grade.score_expected and "raw" not in record


async def test_cut_answer_gets_its_score_in_a_second_constrained_step() -> None:
    cut = '{"feedback": "Bon treball, però caldria explicar el paper de la clorof'

    def script(request: GenerationRequest) -> CompletionOutput:
        if request.messages is not None:
            return _out(cut, finish="length")
        return _out("2", logprobs=[TokenLogprob("2", math.log(0.8),
                                                [("2", math.log(0.8)), ("1", math.log(0.2))])])

    engine = ScriptedEngine(script)
    grade = await Judge(engine, TEACHER).grade(ITEM)
    assert grade.status == "scored" and grade.score == 2 and grade.attempts == 1
    assert grade.feedback == "Bon treball, però caldria explicar el paper de la clorof"
    assert grade.score_probs is not None and grade.score_probs[2] == pytest.approx(0.8)
    assert grade.score_expected == pytest.approx(1.8)
    second = engine.requests[1]
    assert second.prompt is not None and second.prompt.endswith(
        'Assistant: {"feedback": "Bon treball, però caldria explicar el paper de la clorof", '
        '"nota": ')
    assert "Resposta: Les plantes fan menjar amb la llum." in second.prompt
    assert second.constraint is not None
    assert second.constraint.choice == ("0", "1", "2", "3", "4", "5")
    assert second.max_tokens <= 3


async def test_the_judges_model_is_on_every_request_a_cut_answers_second_step_too() -> None:
    cut = '{"feedback": "Bon treball, però caldria explicar el paper de la clorof'

    def script(request: GenerationRequest) -> CompletionOutput:
        return _out(cut, finish="length") if request.messages is not None else _out("2")

    engine = ScriptedEngine(script)
    grade = await Judge(engine, TEACHER, model="judge-large").grade(ITEM)
    assert grade.score == 2
    assert [r.model for r in engine.requests] == ["judge-large", "judge-large"]
    await Judge(engine, TEACHER).grade(ITEM)
    assert engine.requests[-1].model is None  # the engine's own
    assert not any(r.background for r in engine.requests)  # direct unless told otherwise


async def test_cut_answer_without_feedback_is_retried_then_unscored() -> None:
    engine = ScriptedEngine(lambda r: _out('{"feedb', finish="length"))
    grade = await Judge(engine, TEACHER, retries=1).grade(ITEM)
    assert grade.status == "unscored" and grade.score is None and grade.attempts == 2
    assert grade.raw == '{"feedb' and "cut at max_tokens" in (grade.reason or "")
    assert len(engine.requests) == 2


async def test_garbage_is_retried_then_unscored_with_raw_and_reason() -> None:
    engine = ScriptedEngine(lambda r: "I cannot grade this.")
    grade = await Judge(engine, TEACHER, seed=7).grade(ITEM, 0)
    assert grade.status == "unscored" and grade.score is None and grade.feedback is None
    assert grade.attempts == 3 and len(engine.requests) == 3
    assert grade.raw == "I cannot grade this."
    assert grade.reason == "the answer holds no JSON object (after 3 attempts)"
    # retries sample (temperature > 0) with a fresh seed each time
    assert [r.temperature for r in engine.requests] == [0.0, 0.7, 0.7]
    assert [r.seed for r in engine.requests] == [7, 8, 9]
    record = grade.record(TEACHER)
    assert record["nota"] is None and record["status"] == "unscored"
    assert record["raw"] == "I cannot grade this." and "reason" in record


async def test_retry_succeeds_after_bad_answer() -> None:
    answers = iter(['{"feedback": "x", "nota": 9}', '{"feedback": "Molt bé.", "nota": 5}'])
    engine = PlainEngine(lambda r: next(answers))
    grade = await Judge(engine, TEACHER).grade(ITEM)
    assert grade.status == "scored" and grade.score == 5 and grade.attempts == 2


async def test_out_of_scale_json_from_an_unconstrained_engine_is_never_clamped() -> None:
    engine = PlainEngine(lambda r: '{"feedback": "Perfecte", "nota": 10}')
    grade = await Judge(engine, TEACHER, retries=0).grade(ITEM)
    assert grade.status == "unscored" and grade.score is None
    assert "10 is outside the scale" in (grade.reason or "")


async def test_unconstrained_engine_gets_no_constraint_and_free_text_parses() -> None:
    engine = PlainEngine(lambda r: "Nota: 3\nFeedback: Correcte però incomplet.")
    grade = await Judge(engine, TEACHER).grade(ITEM)
    assert (grade.score, grade.feedback) == (3, "Correcte però incomplet.")
    assert engine.requests[0].constraint is None and engine.requests[0].logprobs is None
    assert grade.score_expected is None and grade.score_probs is None


async def test_prometheus_uses_regex_and_parses_result_marker() -> None:
    rubric = load_rubric("prometheus-absolute")
    engine = ScriptedEngine(lambda r: " The response is correct and complete. [RESULT] 5")
    grade = await Judge(engine, rubric).grade({"instruction": "2+2?", "response": "4"}, 2)
    assert grade.record(rubric) == {"id": "2", "score": 5, "status": "scored",
                                    "feedback": "The response is correct and complete."}
    constraint = engine.requests[0].constraint
    assert constraint is not None and constraint.regex is not None
    assert constraint.regex.endswith(r"\[RESULT\] (1|2|3|4|5)")


async def test_prometheus_cut_answer_closes_with_result_marker() -> None:
    rubric = load_rubric("prometheus-absolute")

    def script(request: GenerationRequest) -> CompletionOutput:
        if request.messages is not None:
            return _out("Feedback: The answer is good but", finish="length")
        return _out("4")

    engine = ScriptedEngine(script)
    grade = await Judge(engine, rubric).grade({"instruction": "I", "response": "R"})
    assert (grade.score, grade.feedback) == (4, "The answer is good but")
    assert engine.requests[1].prompt is not None
    assert engine.requests[1].prompt.endswith("Assistant: The answer is good but [RESULT] ")


RUSSIAN_PROMPT = """Оцените ответ по шкале от 1 до 5.
Формат вывода:
Оценка: [ЧИСЛО ОТ 1 ДО 5]
Обоснование: [ТЕКСТ]
---
Вопрос: {question}
Ответ для оценки: {answer}
---
"""


async def test_prompt_file_rubric_free_text_and_json(tmp_path: Path) -> None:
    path = tmp_path / "judge_prompt.txt"
    path.write_text(RUSSIAN_PROMPT, encoding="utf-8")
    rubric = rubric_from_prompt_file(path, scale=(1, 5))
    plain = PlainEngine(lambda r: "Оценка: 4\nОбоснование: Ответ точен, но краток.")
    # seed 004 items name their fields inputs/predictions
    item = {"inputs": "Столица Франции?", "predictions": "Париж"}
    judge = Judge(plain, rubric)
    judge.validate_item(item, 0)
    grade = await judge.grade(item)
    assert grade.record(rubric) == {"id": "0", "score": 4, "status": "scored",
                                    "justification": "Ответ точен, но краток."}
    assert plain.requests[0].messages is not None
    assert "Вопрос: Столица Франции?" in plain.requests[0].messages[-1]["content"]
    constrained = ScriptedEngine(lambda r: '{"justification": "Точно.", "score": 5}')
    grade = await Judge(constrained, rubric).grade({"question": "Q", "answer": "A"})
    assert (grade.score, grade.feedback) == (5, "Точно.")
    schema = constrained.requests[0].constraint.json_schema  # type: ignore[union-attr]
    assert list(schema["properties"]) == ["justification", "score"]


async def test_engine_rejecting_the_item_makes_it_unscored_without_retry() -> None:
    def script(request: GenerationRequest) -> str:
        raise InvalidInputError("the prompt has 5000 tokens; this model takes at most 2047")

    engine = ScriptedEngine(script)
    grade = await Judge(engine, TEACHER).grade(ITEM)
    assert grade.status == "unscored" and "5000 tokens" in (grade.reason or "")
    assert len(engine.requests) == 1


async def test_aborted_generation_is_not_retried() -> None:
    engine = ScriptedEngine(lambda r: _out('{"feedback": "Bo', finish="abort"))
    grade = await Judge(engine, TEACHER).grade(ITEM)
    assert grade.status == "unscored" and grade.reason == "the generation was aborted"
    assert grade.raw == '{"feedback": "Bo' and len(engine.requests) == 1


async def test_engine_outage_propagates() -> None:
    def script(request: GenerationRequest) -> str:
        raise EngineUnavailableError("the model is still loading")

    with pytest.raises(EngineUnavailableError):
        await Judge(ScriptedEngine(script), TEACHER).grade(ITEM)


class NoOutputEngine(ScriptedEngine):
    """An engine whose result holds no completion (what an upstream's `choices: []` gave)."""

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        return GenerationResult(request.request_id, [], 3)


async def test_a_result_without_completions_is_an_engine_error_not_an_index_error() -> None:
    """Defect: `result.outputs[0]` (judge.py `_attempt`) raised IndexError on an empty
    result, a 500 with no message. It is an EngineError saying what happened."""
    with pytest.raises(EngineError, match="returned no completion for this item"):
        await Judge(NoOutputEngine(lambda r: ""), TEACHER).grade(ITEM)


async def test_braces_in_user_text_reach_the_model_literally() -> None:
    engine = ScriptedEngine(lambda r: '{"feedback": "ok", "nota": 1}')
    item = {**ITEM, "respuesta": 'f(x) = {x | x > 0} and {curso} {"a": 1}'}
    await Judge(engine, TEACHER).grade(item)
    messages = engine.requests[0].messages
    assert messages is not None
    assert messages[-1]["content"].endswith('Resposta: f(x) = {x | x > 0} and {curso} {"a": 1}')


def test_validate_item_names_the_field() -> None:
    judge = Judge(ScriptedEngine(lambda r: ""), TEACHER)
    judge.validate_item(ITEM, 0)
    missing = {k: v for k, v in ITEM.items() if k != "respuesta"}
    with pytest.raises(InvalidInputError, match=r"items\[2\] lacks the field\(s\) \['respuesta'\]"):
        judge.validate_item(missing, 2)
    with pytest.raises(InvalidInputError, match=r"items\[0\] has unknown field\(s\) \['nom'\]"):
        judge.validate_item({**ITEM, "nom": "x"}, 0)
    with pytest.raises(InvalidInputError, match=r"items\[1\]\.respuesta must be a string"):
        judge.validate_item({**ITEM, "respuesta": ["a"]}, 1)
    with pytest.raises(InvalidInputError, match=r"items\[1\]\.curso must be a string"):
        judge.validate_item({**ITEM, "curso": None}, 1)
    with pytest.raises(InvalidInputError, match=r"items\[4\] must be an object"):
        judge.validate_item("text", 4)  # type: ignore[arg-type]
    judge.validate_item({**ITEM, "id_alumno": 17}, 0)  # integer ids are fine
    with pytest.raises(InvalidInputError, match="id_alumno must be a string or an integer"):
        judge.validate_item({**ITEM, "id_alumno": True}, 0)


def test_aliases_optional_fields_and_ids() -> None:
    judge = Judge(ScriptedEngine(lambda r: ""), JUDGE15)
    judge.validate_item({"question": "Q", "answer": "A", "id": "q1"}, 0)
    judge.validate_item({"inputs": "Q", "predictions": "A", "reference": None}, 0)
    with pytest.raises(InvalidInputError, match=r"lacks the field\(s\) \['predictions'\]"):
        judge.validate_item({"inputs": "Q"}, 0)
    assert judge.item_id({"inputs": "Q", "id": "q1"}, 5) == "q1"
    assert judge.item_id({"inputs": "Q"}, 5) == "5"
    teacher = Judge(ScriptedEngine(lambda r: ""), TEACHER)
    assert teacher.item_id({**ITEM, "id_alumno": 17}, 5) == "17"
    messages = judge.messages({"question": "What?", "answer": "That."})
    assert messages[-1]["content"] == "Question: What?\nAnswer: That."


async def test_concurrent_grades_are_independent() -> None:
    def script(request: GenerationRequest) -> str:
        assert request.messages is not None
        score = int(request.messages[-1]["content"].split("Resposta: ")[1])
        return json.dumps({"feedback": f"item {score}", "nota": score})

    judge = Judge(ScriptedEngine(script, delay=0.01), TEACHER)
    items = [{**ITEM, "id_alumno": f"A{i}", "respuesta": str(i)} for i in range(6)]
    grades = await asyncio.gather(*(judge.grade(it, i) for i, it in enumerate(items)))
    assert [(g.item_id, g.score, g.feedback) for g in grades] == [
        (f"A{i}", i, f"item {i}") for i in range(6)]


def test_every_rubric_accepts_a_reference_for_job_metrics() -> None:
    """Regression: teacher-eval-ca rejected `reference`, so its jobs could not get metrics."""
    judge = Judge(ScriptedEngine(lambda r: ""), load_rubric("teacher-eval-ca"))
    item = {"id_alumno": "A1", "curso": "3r ESO", "consigna": "Q", "respuesta": "A",
            "reference": "the model answer"}
    judge.validate_item(item, 0)
    with pytest.raises(InvalidInputError, match="unknown field"):
        judge.validate_item({**item, "referencia": "x"}, 0)

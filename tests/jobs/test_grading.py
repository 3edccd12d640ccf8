"""How jobs reach the judge: `JudgeKit` loads rubrics (by name, inline, from RUBRICS_DIR) and
builds a `Grader` that grades items into records keyed by the rubric's names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import ConfigurationError, InvalidInputError, NotFoundError
from evalserve.jobs.grading import DEFAULT_RUBRIC, JudgeKit
from evalserve.judge.rubric import Rubric, load_rubric
from evalserve.settings import load_settings
from tests.fakes import ScriptedEngine

ITEM = {"id_alumno": "A001", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
        "respuesta": "Les plantes fan menjar amb la llum."}
INLINE = {"name": "brevity", "template": "Answer: {answer}", "fields": ["answer"],
          "scale": [0, 1], "instructions": "Score 1 if the answer is short."}


def teacher_answer(request: GenerationRequest) -> str:
    return json.dumps({"feedback": "Bon treball per a 3r ESO.", "nota": 4})


def test_no_rubric_is_the_seed_rubric() -> None:
    name, rubric = JudgeKit().load_rubric(None)
    assert name == DEFAULT_RUBRIC == "teacher-eval-ca"
    assert rubric["score_field"] == "nota" and rubric["id_field"] == "id_alumno"


def test_a_rubric_by_name_is_its_canonical_json_dict() -> None:
    name, rubric = JudgeKit().load_rubric("judge-1-5")
    assert name == "judge-1-5"
    assert rubric == json.loads(json.dumps(rubric))  # storable as it is
    assert (rubric["scale"], rubric["feedback_field"]) == ([1, 2, 3, 4, 5], "justification")
    assert Rubric.model_validate(rubric) == load_rubric("judge-1-5")


def test_an_inline_rubric_is_validated_and_named_by_itself() -> None:
    name, rubric = JudgeKit().load_rubric(INLINE)
    assert name == "brevity"
    assert (rubric["fields"], rubric["scale"], rubric["score_field"]) == (["answer"], [0, 1],
                                                                          "score")


def test_an_unknown_rubric_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="no rubric named 'nope'; known rubrics: ") as info:
        JudgeKit().load_rubric("nope")
    assert "judge-1-5" in info.value.message and "teacher-eval-ca" in info.value.message


def test_a_broken_inline_rubric_says_which_key() -> None:
    broken = {key: value for key, value in INLINE.items() if key != "template"}
    with pytest.raises(InvalidInputError, match=r"invalid rubric 'brevity' \(inline\): template"):
        JudgeKit().load_rubric(broken)


def test_rubrics_dir_comes_first(tmp_path: Path) -> None:
    (tmp_path / "judge-1-5.yaml").write_text(
        "template: 'Q: {question}'\nfields: [question]\nscale: [1, 2, 3]\n", encoding="utf-8")
    name, rubric = JudgeKit(tmp_path).load_rubric("judge-1-5")
    assert (name, rubric["scale"], rubric["fields"]) == ("judge-1-5", [1, 2, 3], ["question"])
    assert JudgeKit(tmp_path).load_rubric("teacher-eval-ca")[0] == "teacher-eval-ca"


def test_a_missing_rubrics_dir_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="RUBRICS_DIR=.* is not a directory"):
        JudgeKit(tmp_path / "absent").load_rubric("judge-1-5")


async def test_a_grader_grades_into_the_rubric_record() -> None:
    engine = ScriptedEngine(teacher_answer)
    kit = JudgeKit()
    grader = kit.grader(engine, kit.load_rubric("teacher-eval-ca")[1])
    grader.validate_item(ITEM, 0)
    assert grader.item_id(ITEM, 7) == "A001"
    status, score, record = await grader.grade(ITEM, 7)
    assert (status, score) == ("scored", 4)
    assert record == {"id_alumno": "A001", "nota": 4, "feedback": "Bon treball per a 3r ESO.",
                      "status": "scored"}
    assert len(engine.requests) == 1


def test_a_grader_validates_items_against_its_rubric() -> None:
    kit = JudgeKit()
    grader = kit.grader(ScriptedEngine(teacher_answer), kit.load_rubric(None)[1])
    incomplete = {k: v for k, v in ITEM.items() if k != "respuesta"}
    with pytest.raises(InvalidInputError, match=r"items\[2\] lacks the field\(s\) \['respuesta'\]"):
        grader.validate_item(incomplete, 2)


async def test_the_kit_settings_reach_the_engine() -> None:
    engine = ScriptedEngine(teacher_answer)
    kit = JudgeKit(max_tokens=40, temperature=0.3, seed=11)
    await kit.grader(engine, kit.load_rubric(None)[1]).grade(ITEM, 0)
    request = engine.requests[0]
    assert (request.max_tokens, request.temperature, request.seed) == (40, 0.3, 11)


@pytest.mark.parametrize(("retries", "requests", "reason"), [
    (0, 1, "(after 1 attempt)"),
    (2, 3, "(after 3 attempts)"),
])
async def test_unparseable_answers_are_retried_then_unscored(retries: int, requests: int,
                                                              reason: str) -> None:
    engine = ScriptedEngine(lambda r: "I cannot grade this.")
    kit = JudgeKit(retries=retries)
    status, score, record = await kit.grader(engine, kit.load_rubric(None)[1]).grade(ITEM, 0)
    assert (status, score) == ("unscored", None)
    assert record["reason"].endswith(reason)
    assert record["raw"] == "I cannot grade this."
    assert len(engine.requests) == requests


@pytest.mark.parametrize(("rubric", "record"), [
    ("teacher-eval-ca", {"id_alumno": "A009", "nota": None, "feedback": None,
                         "status": "unscored", "reason": "prompt too long"}),
    ("judge-1-5", {"id": "A009", "score": None, "justification": None, "status": "unscored",
                   "reason": "prompt too long"}),
])
def test_failed_record_uses_the_rubric_names(rubric: str, record: dict) -> None:
    kit = JudgeKit()
    grader = kit.grader(ScriptedEngine(teacher_answer), kit.load_rubric(rubric)[1])
    assert grader.failed_record("A009", "prompt too long") == record


def test_from_settings_takes_rubrics_dir_and_only_an_explicit_max_new_tokens(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    default = JudgeKit.from_settings(load_settings())
    assert (default.rubrics_dir, default.max_tokens) == (None, None)  # each rubric's budget
    monkeypatch.setenv("RUBRICS_DIR", str(tmp_path))
    monkeypatch.setenv("MAX_NEW_TOKENS", "256")  # the default value, but set on purpose
    kit = JudgeKit.from_settings(load_settings())
    assert (kit.rubrics_dir, kit.max_tokens) == (tmp_path, 256)


async def test_an_explicit_max_new_tokens_caps_the_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_NEW_TOKENS", "64")
    engine = ScriptedEngine(teacher_answer)
    kit = JudgeKit.from_settings(load_settings())
    await kit.grader(engine, kit.load_rubric(None)[1]).grade(ITEM, 0)
    assert engine.requests[0].max_tokens == 64

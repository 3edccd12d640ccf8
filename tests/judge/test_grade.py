"""Human grades on items: the rubric's `human_field` is accepted, checked, and carried into the
record as `human_score`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalserve.errors import InvalidInputError
from evalserve.judge import Judge, load_rubric
from evalserve.judge.grade import Grade, human_score
from tests.fakes import ScriptedEngine

JUDGE15 = load_rubric("judge-1-5")
LABELLED = Path(__file__).resolve().parents[2] / "examples" / "agreement" / "labelled.jsonl"
ANSWER = '{"justification": "Correct and complete answer.", "score": 4}'


async def test_the_human_grade_is_accepted_and_carried_as_human_score() -> None:
    judge = Judge(ScriptedEngine(lambda r: ANSWER), JUDGE15)
    item = {"id": "q1", "question": "2+2?", "answer": "4", "human_score": 4.75}
    judge.validate_item(item, 0)
    record = (await judge.grade(item, 0)).record(JUDGE15)
    assert record == {"id": "q1", "score": 4, "justification": "Correct and complete answer.",
                      "status": "scored", "human_score": 4.75}
    assert "4.75" not in json.dumps(judge.messages(item))  # the judge never sees the grade


async def test_an_item_without_a_human_grade_has_no_human_score_key() -> None:
    judge = Judge(ScriptedEngine(lambda r: ANSWER), JUDGE15)
    for item in ({"question": "q", "answer": "a"}, {"question": "q", "answer": "a",
                                                    "human_score": None},
                 {"question": "q", "answer": "a", "human_score": " "}):
        judge.validate_item(item, 0)
        assert "human_score" not in (await judge.grade(item, 0)).record(JUDGE15)


@pytest.mark.parametrize(("value", "expected"), [(3, 3.0), (2.5, 2.5), ("4", 4.0),
                                                 (" 3,5 ", 3.5), ("", None)])
def test_numbers_and_numeric_text_are_human_grades(value: object, expected: float) -> None:
    """CSV files give every cell as text: `"4"` is a grade, an empty cell is none."""
    assert human_score({"human_score": value}, JUDGE15, "items[0]") == expected


@pytest.mark.parametrize("value", ["four", True, [4], {"g": 4}, "nan", "inf"])
def test_a_non_numeric_human_grade_is_refused_naming_item_and_field(value: object) -> None:
    judge = Judge(ScriptedEngine(lambda r: ANSWER), JUDGE15)
    with pytest.raises(InvalidInputError) as info:
        judge.validate_item({"question": "q", "answer": "a", "human_score": value}, 2)
    assert info.value.message.startswith("items[2].human_score must be a number")
    assert info.value.status == 422


async def test_a_rubric_names_its_own_human_field() -> None:
    """Seed 000 items carry the teacher's grade as `nota_professor`; the record says
    `human_score` whatever the item called it."""
    spec = {**load_rubric("teacher-eval-ca").model_dump(), "human_field": "nota_professor"}
    rubric = load_rubric(spec)
    judge = Judge(ScriptedEngine(lambda r: '{"feedback": "Molt bé, endavant.", "nota": 4}'),
                  rubric)
    item = {"id_alumno": "A1", "curso": "3r ESO", "consigna": "c", "respuesta": "r",
            "nota_professor": 3}
    judge.validate_item(item, 0)
    record = (await judge.grade(item, 0)).record(rubric)
    assert record["human_score"] == 3.0 and "nota_professor" not in record
    with pytest.raises(InvalidInputError) as info:
        judge.validate_item({**item, "human_score": 3}, 5)
    assert "items[5] has unknown field(s) ['human_score']" in info.value.message
    with pytest.raises(InvalidInputError) as bad:
        judge.validate_item({**item, "nota_professor": "bé"}, 1)
    assert bad.value.message.startswith("items[1].nota_professor must be a number")


def test_human_field_must_not_be_an_input_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        load_rubric({**JUDGE15.model_dump(), "human_field": "inputs"})
    assert "human_field 'inputs'" in info.value.message


def test_the_labelled_example_set_is_accepted_as_it_is() -> None:
    """examples/agreement/labelled.jsonl (with `lang` and `human_score`) is gradable with
    judge-1-5 directly."""
    judge = Judge(ScriptedEngine(lambda r: ANSWER), JUDGE15)
    items = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    assert len(items) == 40
    for index, item in enumerate(items):
        judge.validate_item(item, index)
        assert human_score(item, JUDGE15, f"items[{index}]") in {1.0, 2.0, 3.0, 4.0, 5.0}
    assert "lang" not in json.dumps(judge.messages(items[0]))


def test_a_grade_record_without_human_or_pair_keeps_todays_keys() -> None:
    grade = Grade("7", "scored", 3, "ok")
    assert grade.record(JUDGE15) == {"id": "7", "score": 3, "justification": "ok",
                                     "status": "scored"}

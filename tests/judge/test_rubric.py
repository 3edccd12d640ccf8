"""Rubric loading and validation: built-ins, RUBRICS_DIR, inline dicts, hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.errors import ConfigurationError, InvalidInputError, NotFoundError
from evalserve.judge.rubric import Rubric, list_rubrics, load_rubric, load_rubric_file

MINIMAL = {
    "name": "mini",
    "instructions": "Grade it.",
    "template": "Text: {text}",
    "fields": ["text"],
    "scale": [1, 2, 3],
}


def test_builtins_are_listed_with_their_contract_fields() -> None:
    rubrics = {r.name: r for r in list_rubrics()}
    assert set(rubrics) >= {"teacher-eval-ca", "judge-1-5", "prometheus-absolute"}
    teacher = rubrics["teacher-eval-ca"]
    assert teacher.fields == ["id_alumno", "curso", "consigna", "respuesta"]
    assert (teacher.id_field, teacher.score_field, teacher.feedback_field) == (
        "id_alumno", "nota", "feedback")
    assert teacher.scale == [0, 1, 2, 3, 4, 5] and teacher.language == "ca"
    judge = rubrics["judge-1-5"]
    assert judge.fields == ["inputs", "predictions"] and judge.scale == [1, 2, 3, 4, 5]
    assert judge.feedback_field == "justification"
    assert rubrics["prometheus-absolute"].format == "prometheus"


def test_unknown_name_is_not_found_and_lists_known() -> None:
    with pytest.raises(NotFoundError, match="teacher-eval-ca"):
        load_rubric("no-such-rubric")


def test_inline_rubric_validates_and_sorts_scale() -> None:
    rubric = load_rubric({**MINIMAL, "scale": [3, 1, 2]})
    assert rubric.scale == [1, 2, 3] and rubric.scale_text == "1-3"
    assert load_rubric({**MINIMAL, "scale": [0, 5, 10]}).scale_text == "0, 5, 10"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scale": [1]}, "scale: needs between 2"),
        ({"scale": [1, 1, 2]}, "distinct"),
        ({"template": "Text: {txt}"}, r"template uses \['txt'\]"),
        ({"template": "no placeholders"}, "at least one field"),
        ({"id_field": "nope"}, "id_field 'nope'"),
        ({"fields": []}, "fields: needs at least one"),
        ({"score_field": "status"}, "reserved"),
        ({"score_field": "feedback"}, "must differ"),
        ({"name": "bad name!"}, "name:"),
        ({"examples": [{"text": "x", "score": 9, "feedback": "f"}]}, r"examples\[0\] needs a"),
        ({"examples": [{"score": 1, "feedback": "f"}]}, "examples\\[0\\] lacks"),
        ({"max_feedback_chars": 5}, "max_feedback_chars"),
        ({"format": "xml"}, "format"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_inline_rubric_names_the_problem(change: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        load_rubric({**MINIMAL, **change})
    assert "invalid rubric" in info.value.message


def test_inline_rubric_that_is_not_a_mapping() -> None:
    with pytest.raises(InvalidInputError, match="rubric name or an inline"):
        load_rubric(42)  # type: ignore[arg-type]


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CUSTOM = """\
description: Custom essay rubric
instructions: Grade the essay.
template: "Essay: {essay}"
fields: [essay, student]
id_field: student
scale: [0, 10]
language: es
"""


def test_rubrics_dir_adds_and_overrides(tmp_path: Path) -> None:
    folder = tmp_path / "rubrics"
    _write(folder, "essay", CUSTOM)
    _write(folder, "judge-1-5", CUSTOM)  # same name as a built-in: the directory wins
    names = [r.name for r in list_rubrics(folder)]
    assert "essay" in names and "teacher-eval-ca" in names
    essay = load_rubric("essay", folder)
    assert essay.scale == [0, 10] and essay.id_field == "student" and essay.language == "es"
    assert load_rubric("judge-1-5", folder).description == "Custom essay rubric"
    assert load_rubric("judge-1-5").description != "Custom essay rubric"


def test_invalid_file_is_skipped_in_list_but_reported_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "rubrics"
    _write(folder, "broken", "template: [unclosed\n")
    _write(folder, "noscale", "template: '{a}'\nfields: [a]\n")
    names = [r.name for r in list_rubrics(folder)]
    assert "broken" not in names and "noscale" not in names
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_rubric("broken", folder)
    with pytest.raises(InvalidInputError, match=r"noscale.yaml: scale: Field required"):
        load_rubric("noscale", folder)


def test_file_name_must_match_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "r", "one", "name: two\n" + CUSTOM)
    with pytest.raises(InvalidInputError, match="must match the file name"):
        load_rubric_file(path)


def test_missing_rubrics_dir_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="RUBRICS_DIR"):
        list_rubrics(tmp_path / "absent")


def test_hash_is_stable_and_content_sensitive() -> None:
    a = load_rubric(MINIMAL)
    b = Rubric.model_validate(dict(reversed(list(MINIMAL.items()))))
    assert a.hash() == b.hash() and len(a.hash()) == 64
    assert load_rubric({**MINIMAL, "instructions": "Grade it!"}).hash() != a.hash()

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


@pytest.mark.parametrize(("scale", "message"), [
    ([0, 1_000_000_000], "scale: score 1000000000 is out of range: scores must lie between "
                         "-1000000 and 1000000"),
    ([-10**30, 1], "scale: score -1000000000000000000000000000000 is out of range"),
    (list(range(102)), "scale: List should have at most 101 items"),
    ([0, float("inf")], "scale.1: Input should be a finite number"),
    ([0, float("nan")], "scale.1: Input should be a finite number"),
])
def test_a_poison_scale_is_refused_naming_the_field(scale: list, message: str) -> None:
    """Defect (issue 11, poison jobs): `"scale": [0, 1000000000]` was accepted, and every
    item's prompt then built a billion-element list on the event loop (`scale_text`)."""
    with pytest.raises(InvalidInputError) as info:
        load_rubric({**MINIMAL, "scale": scale})
    assert info.value.message.startswith("invalid rubric 'mini' (inline): ")
    assert message in info.value.message
    assert info.value.status == 422


def test_the_widest_scale_renders_without_building_its_range() -> None:
    """Defect (issue 11, poison jobs): `scale_text` compared the scale with
    `list(range(min, max + 1))`, materialising every integer between the bounds."""
    import tracemalloc

    from evalserve.judge.prompts import build_messages, format_instruction, output_schema

    rubric = load_rubric({**MINIMAL, "scale": [-1_000_000, 0, 1_000_000]})
    tracemalloc.start()
    try:
        text = rubric.scale_text
        messages = build_messages(rubric, {"text": "t"}, json_output=True)
        schema = output_schema(rubric)
        line = format_instruction(rubric, json_output=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "-1000000, 0, 1000000" and not rubric.scale_contiguous
    assert "-1000000, 0, 1000000" in messages[0]["content"] and "-1000000, 0, 1000000" in line
    assert schema["properties"]["score"]["enum"] == [-1_000_000, 0, 1_000_000]
    assert peak < 1_000_000  # bytes: the range would take tens of MB
    contiguous = load_rubric({**MINIMAL, "scale": list(range(-50, 51))})
    assert contiguous.scale_contiguous and contiguous.scale_text == "-50-50"


@pytest.mark.parametrize(("change", "message"), [
    ({"template": "Text: {text} " + "x" * 20_000}, "template: String should have at most 20000"),
    ({"instructions": "x" * 20_001}, "instructions: String should have at most 20000"),
    ({"examples": [{"text": "t", "score": 1, "feedback": "f"}] * 9},
     "examples: List should have at most 8 items"),
    ({"examples": [{"text": "t" * 20_000, "score": 1, "feedback": "f"}]},
     "examples[0] is too large: at most 64 keys and 20000 characters in all"),
    ({"optional_fields": ["ref"], "defaults": {"ref": "r" * 20_001}},
     "default for 'ref' has 20001 characters; the limit is 20000"),
    ({"fields": [f"f{i}" for i in range(65)], "template": "{f0}"},
     "fields: List should have at most 64 items"),
    ({"language": "x" * 65}, "language: String should have at most 64 characters"),
])
def test_rubric_parts_rendered_per_item_are_bounded(change: dict, message: str) -> None:
    """Defect (issue 11, poison jobs): an inline rubric's template, instructions, examples and
    defaults, rendered into every item's prompt, were unbounded."""
    with pytest.raises(InvalidInputError) as info:
        load_rubric({**MINIMAL, **change})
    assert message in info.value.message


def test_every_builtin_rubric_fits_the_bounds() -> None:
    for rubric in list_rubrics():
        assert len(rubric.scale) <= 101 and len(rubric.examples) <= 8

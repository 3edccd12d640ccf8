"""Prompt building: system, few-shot turns, item rendering, braces, schema."""

from __future__ import annotations

import json

from evalserve.judge.prompts import build_messages, fill, output_schema, render_item, transcript
from evalserve.judge.rubric import load_rubric


def test_fill_keeps_unknown_and_stray_braces() -> None:
    assert fill("{a} {b} {} {{x}} {\"k\": 1}", {"a": "A"}) == '{a} {b} {} {{x}} {"k": 1}'.replace(
        "{a}", "A")
    # user text with braces is inserted literally, never re-formatted
    assert fill("Q: {q}", {"q": "{q} and {other}"}) == "Q: {q} and {other}"


def test_teacher_messages_have_system_fewshot_and_item() -> None:
    rubric = load_rubric("teacher-eval-ca")
    item = {"id_alumno": "A1", "curso": "1r ESO", "consigna": "Explica {x}", "respuesta": "R"}
    messages = build_messages(rubric, item, json_output=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert "de 0 a 5" in system and "Catalan" in system and '"nota"' in system
    assert "300 characters" in system
    answer = json.loads(messages[2]["content"])
    assert list(answer) == ["feedback", "nota"] and answer["nota"] == 2
    assert messages[3]["content"] == "Curs: 1r ESO\nConsigna: Explica {x}\nResposta: R"


def test_optional_paragraph_dropped_unless_present_or_defaulted() -> None:
    rubric = load_rubric("judge-1-5")
    assert "Reference" not in render_item(rubric, {"inputs": "Q", "predictions": "A"})
    with_ref = render_item(rubric, {"inputs": "Q", "predictions": "A", "reference": "R"})
    assert with_ref.endswith("Reference answer: R")
    prometheus = load_rubric("prometheus-absolute")
    text = render_item(prometheus, {"instruction": "I", "response": "R"})
    assert "###Reference Answer" not in text and "Score 5: The response is fully" in text
    assert "between 1 and 5" in text
    custom = render_item(prometheus, {"instruction": "I", "response": "R", "criteria": "Be nice",
                                      "reference_answer": "Ref"})
    assert "Be nice" in custom and "###Reference Answer (Score 5):\nRef" in custom


def test_schema_puts_feedback_first_and_scale_enum() -> None:
    rubric = load_rubric("teacher-eval-ca")
    schema = output_schema(rubric)
    assert list(schema["properties"]) == ["feedback", "nota"]
    assert schema["properties"]["nota"]["enum"] == [0, 1, 2, 3, 4, 5]
    assert schema["properties"]["feedback"]["maxLength"] == 300
    assert schema["additionalProperties"] is False


def test_transcript_ends_with_assistant_turn() -> None:
    text = transcript([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "System: S\n\nUser: U\n\nAssistant: "


def test_score_format_asks_for_the_score_alone_and_examples_need_no_feedback() -> None:
    rubric = load_rubric({
        "name": "score-only", "format": "score", "fields": ["text"], "scale": [0, 1, 2],
        "instructions": "Rate it.", "template": "Text: {text}",
        "examples": [{"text": "good", "score": 2}],
    })
    messages = build_messages(rubric, {"text": "T"}, json_output=True)
    assert messages[0]["content"] == 'Rate it.\nAnswer with JSON: {"score": <0-2>}.'
    assert messages[1:] == [{"role": "user", "content": "Text: good"},
                            {"role": "assistant", "content": '{"score": 2}'},
                            {"role": "user", "content": "Text: T"}]
    assert output_schema(rubric) == {
        "type": "object", "properties": {"score": {"type": "integer", "enum": [0, 1, 2]}},
        "required": ["score"], "additionalProperties": False}

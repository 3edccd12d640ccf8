"""Seed 004's judge prompt file turned into a rubric."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.errors import InvalidInputError
from evalserve.judge.promptfile import rubric_from_prompt_file
from evalserve.judge.prompts import build_messages

RUSSIAN = """\
Вы являетесь экспертным оценщиком качества ответов. Оцените ответ по шкале от 1 до 5.

**Пример:**
Вопрос: Столица Франции?
Ответ для оценки: Париж.
Оценка: 5
Обоснование: Точно и кратко.

**Формат вывода:**
Оценка: [ЧИСЛО ОТ 1 ДО 5]
Обоснование: [ВАШЕ ОБОСНОВАНИЕ]

---
Вопрос: {question}
Ответ для оценки: {answer}
---
"""


def test_russian_prompt_file_becomes_a_text_rubric(tmp_path: Path) -> None:
    path = tmp_path / "judge_prompt.txt"
    path.write_text(RUSSIAN, encoding="utf-8")
    rubric = rubric_from_prompt_file(path, scale=(1, 5))
    assert rubric.name == "judge_prompt" and rubric.format == "text"
    assert rubric.fields == ["question", "answer"]
    assert rubric.aliases == {"inputs": "question", "predictions": "answer"}
    assert rubric.scale == [1, 2, 3, 4, 5] and rubric.language == "ru"
    assert (rubric.score_field, rubric.feedback_field) == ("score", "justification")
    # The few-shot example stays in the instructions; the item section is the template.
    assert "Париж" in rubric.instructions and "{question}" not in rubric.instructions
    assert rubric.template.startswith("---\nВопрос: {question}")
    messages = build_messages(rubric, {"question": "2+2?", "answer": "4"}, json_output=False)
    assert messages[0]["role"] == "system" and "Формат вывода" in messages[0]["content"]
    assert messages[-1]["content"] == "---\nВопрос: 2+2?\nОтвет для оценки: 4\n---"


def test_prompt_file_scale_and_missing_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "p.txt"
    path.write_text("Rate it.\nQ: {question}\nA: {answer}\n", encoding="utf-8")
    rubric = rubric_from_prompt_file(path, scale=(0, 10), name="my judge")
    assert rubric.scale == list(range(11)) and rubric.name == "my-judge"
    assert rubric.language == "en" and rubric.instructions == "Rate it."
    path.write_text("Rate {question} only", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"\{answer\}"):
        rubric_from_prompt_file(path)
    with pytest.raises(InvalidInputError, match="cannot read"):
        rubric_from_prompt_file(tmp_path / "missing.txt")

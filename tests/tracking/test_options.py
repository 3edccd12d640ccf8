from __future__ import annotations

from pathlib import Path

import pytest

from evalserve.errors import InvalidInputError
from evalserve.tracking.options import parse_scale, prompt_file_rubric

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("text, scale", [("1-5", (1, 5)), ("0..10", (0, 10)), (" 1 : 3", (1, 3))])
def test_parse_scale(text, scale) -> None:
    assert parse_scale(text) == scale


@pytest.mark.parametrize("text", ["5-1", "one-five", "1", "0-200"])
def test_parse_scale_rejects(text) -> None:
    with pytest.raises(InvalidInputError, match="--scale"):
        parse_scale(text)


def test_example_prompt_file_is_a_russian_1_5_rubric() -> None:
    rubric = prompt_file_rubric(EXAMPLES / "judge_prompt.txt", "1-5")
    assert rubric.scale == [1, 2, 3, 4, 5] and rubric.language == "ru"
    assert rubric.aliases == {"inputs": "question", "predictions": "answer"}
    assert "{question}" in rubric.template and "Пример 2" in rubric.instructions

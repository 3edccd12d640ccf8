"""Seed 004's judge prompt file (`{question}`/`{answer}` placeholders) turned into a rubric.

The text before the item section (the first line naming a placeholder, or the `---` line just
above it) becomes the instructions, few-shot examples included; the rest is the per-item
template. Items may name their fields `question`/`answer` or `inputs`/`predictions`.
"""

from __future__ import annotations

import re
from pathlib import Path

from evalserve.errors import InvalidInputError
from evalserve.judge.rubric import Rubric, load_rubric

__all__ = ["rubric_from_prompt_file", "rubric_from_prompt_text"]

_SEPARATOR = re.compile(r"^\s*(-{3,}|={3,}|\*{3,})\s*$")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")


def _split(text: str) -> tuple[str, str]:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "{question}" in line or "{answer}" in line)
    start = first
    for j in range(first - 1, -1, -1):
        if _SEPARATOR.match(lines[j]):
            start = j
            break
        if not lines[j].strip():
            break
    return "\n".join(lines[:start]).strip(), "\n".join(lines[start:]).strip()


def _guess_language(text: str) -> str:
    return "ru" if len(_CYRILLIC.findall(text)) > len(_LATIN.findall(text)) else "en"


def rubric_from_prompt_text(
    text: str, *, scale: tuple[int, int] = (1, 5), name: str = "prompt-file",
    language: str | None = None,
) -> Rubric:
    """A `text`-format rubric from a judge prompt with `{question}` and `{answer}`."""
    if "{question}" not in text or "{answer}" not in text:
        raise InvalidInputError(
            "the judge prompt must contain both {question} and {answer} placeholders"
        )
    low, high = scale
    if low >= high:
        raise InvalidInputError(f"scale {scale}: the first score must be below the second")
    instructions, template = _split(text)
    # Braces in the instructions (a JSON example, say) stay literal: only known names format.
    spec = {
        "name": re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:64].strip("-.") or "prompt-file",
        "description": "judge prompt file with {question} and {answer}",
        "instructions": instructions,
        "template": template,
        "fields": ["question", "answer"],
        "aliases": {"inputs": "question", "predictions": "answer"},
        "scale": list(range(low, high + 1)),
        "language": language or _guess_language(text),
        "score_field": "score",
        "feedback_field": "justification",
        "format": "text",
        "max_feedback_chars": 400,
    }
    return load_rubric(spec)


def rubric_from_prompt_file(
    path: Path, scale: tuple[int, int] = (1, 5), name: str | None = None,
    language: str | None = None,
) -> Rubric:
    """Turn a judge prompt file with `{question}` and `{answer}` placeholders (seed 004) into a
    rubric (see the module doc)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read prompt file {path}: {exc.strerror}") from None
    return rubric_from_prompt_text(text, scale=scale, name=name or Path(path).stem,
                                   language=language)

"""Chat messages for one item: system = instructions + output format, few-shot turns, the item.

Kept short on purpose: the bundled judge is a 135M-parameter model on CPU, where every prompt
token costs prefill time. Placeholders are filled with `str.format_map` over a mapping that
leaves unknown `{names}` (and any other braces in user text) exactly as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from evalserve.judge.rubric import VERDICT_KEY, Rubric

__all__ = [
    "LANGUAGE_NAMES",
    "language_name",
    "fill",
    "render_item",
    "format_instruction",
    "answer_text",
    "build_messages",
    "output_schema",
    "prometheus_regex",
    "transcript",
]

LANGUAGE_NAMES = {
    "en": "English", "ca": "Catalan", "es": "Spanish", "fr": "French", "de": "German",
    "it": "Italian", "pt": "Portuguese", "ru": "Russian", "uk": "Ukrainian", "zh": "Chinese",
    "ja": "Japanese", "ko": "Korean", "ar": "Arabic", "nl": "Dutch", "pl": "Polish",
    "eu": "Basque", "gl": "Galician",
}

_FIELD_REF = re.compile(r"\{(\w[\w-]*)\}")


def language_name(code: str) -> str:
    """`ca` -> `Catalan`; anything else is returned as written."""
    return LANGUAGE_NAMES.get(code.lower(), code)


class _Keep(dict):
    """format_map mapping: unknown names render as `{name}` again."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(text: str, values: dict[str, Any]) -> str:
    """Fill `{name}` placeholders; any other brace (JSON in user text, `{}`) stays literal."""
    # `str.format_map` semantics (a mapping keeping unknown names), applied to `{identifier}`
    # spans only: format_map itself would fail on a JSON example in the instructions.
    # Substituted values are never rescanned, so braces in user text stay literal.
    mapping = _Keep({k: "" if v is None else str(v) for k, v in values.items()})
    return _FIELD_REF.sub(lambda m: mapping[m.group(1)], text)


def _rubric_values(rubric: Rubric) -> dict[str, Any]:
    return {
        "scale_min": rubric.scale_min,
        "scale_max": rubric.scale_max,
        "scale": rubric.scale_text,
        "language": language_name(rubric.language),
        "max_feedback_chars": rubric.max_feedback_chars,
    }


def render_item(rubric: Rubric, item: dict[str, Any]) -> str:
    """The user turn for `item` (canonical field names). Paragraphs naming a missing optional
    field without default are dropped."""
    values = {**rubric.defaults, **{k: v for k, v in item.items() if v is not None}}
    missing = {f for f in rubric.optional_fields if f not in values}
    paragraphs = re.split(r"\n\s*\n", rubric.template)
    kept = [p for p in paragraphs if not (set(_FIELD_REF.findall(p)) & missing)]
    return fill("\n\n".join(kept), {**_rubric_values(rubric), **values}).strip()


def format_instruction(rubric: Rubric, *, json_output: bool) -> str:
    """One line telling the model the answer format, scale, language and length (for
    `format: score`, the score alone: `Answer with JSON: {"score": <1-5>}.`)."""
    lang = language_name(rubric.language)
    if rubric.pairwise:
        return _pair_instruction(rubric, lang, json_output=json_output)
    if rubric.format == "score":
        return f'Answer with JSON: {{"{rubric.score_field}": <{rubric.scale_text}>}}.'
    if json_output:
        # No placeholder text inside the JSON: small models copy it verbatim.
        return (
            f'Reply with JSON only: {{"{rubric.feedback_field}": "...", '
            f'"{rubric.score_field}": N}}, the {rubric.feedback_field} in {lang} (at most '
            f"{rubric.max_feedback_chars} characters), {rubric.score_field} an integer "
            f"{rubric.scale_text}."
        )
    return (
        f"Write the feedback in {lang} (at most {rubric.max_feedback_chars} characters), "
        f"then the score, an integer {rubric.scale_text}."
    )


def _pair_instruction(rubric: Rubric, lang: str, *, json_output: bool) -> str:
    """The answer format of a pairwise judge: the verdict (after a short reason)."""
    tie = ' or "tie" if they are equally good' if rubric.allow_tie else ""
    meaning = f'"A" if response A is better, "B" if response B is better{tie}'
    if rubric.format == "score":
        return f'Answer with JSON only: {{"{VERDICT_KEY}": V}}, V {meaning}.'
    if json_output:
        return (f'Reply with JSON only: {{"{rubric.feedback_field}": "...", "{VERDICT_KEY}": '
                f'V}}, the {rubric.feedback_field} in {lang} (at most '
                f"{rubric.max_feedback_chars} characters), V {meaning}.")
    return (f"Write the feedback in {lang} (at most {rubric.max_feedback_chars} characters), "
            f"then the verdict: {', '.join(rubric.verdict_labels)}.")


def answer_text(rubric: Rubric, score: int, feedback: str, *, json_output: bool) -> str:
    """How the judge's answer looks: the JSON object, or `Feedback: ... [RESULT] N`."""
    if rubric.format == "score":
        return json.dumps({rubric.score_field: score})
    if json_output:
        return json.dumps({rubric.feedback_field: feedback, rubric.score_field: score},
                          ensure_ascii=False)
    if rubric.format == "prometheus":
        return f"{feedback} [RESULT] {score}"
    return f"Score: {score}\nJustification: {feedback}"


def build_messages(rubric: Rubric, item: dict[str, Any], *, json_output: bool) -> list[dict]:
    """Chat messages grading `item` (already mapped to canonical field names)."""
    system = fill(rubric.instructions, {**_rubric_values(rubric), **item}).strip()
    if json_output or rubric.format == "json":
        line = format_instruction(rubric, json_output=True)
        system = f"{system}\n{line}" if system else line
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    for example in rubric.examples:
        score, feedback = rubric.example_answer(example)
        messages.append({"role": "user", "content": render_item(rubric, example)})
        messages.append({"role": "assistant",
                         "content": answer_text(rubric, score, feedback, json_output=json_output)})
    messages.append({"role": "user", "content": render_item(rubric, item)})
    return messages


def output_schema(rubric: Rubric) -> dict[str, Any]:
    """JSON schema of the answer: feedback first (bounded), score last (an enum of the scale);
    the score alone for `format: score`. A pairwise rubric's `verdict` (an enum of its labels)
    takes the score's place."""
    key = rubric.score_field
    score: dict[str, Any] = {"type": "integer", "enum": list(rubric.scale)}
    if rubric.pairwise:
        key, score = VERDICT_KEY, {"type": "string", "enum": list(rubric.verdict_labels)}
    if rubric.format == "score":
        return {"type": "object", "properties": {key: score},
                "required": [key], "additionalProperties": False}
    return {
        "type": "object",
        "properties": {
            rubric.feedback_field: {
                "type": "string",
                "minLength": min(20, rubric.max_feedback_chars),
                "maxLength": rubric.max_feedback_chars,
            },
            key: score,
        },
        "required": [rubric.feedback_field, key],
        "additionalProperties": False,
    }


def prometheus_regex(rubric: Rubric) -> str:
    """`<feedback> [RESULT] <score>` (what follows the prompt's `###Feedback:`), the feedback
    bounded in length; `[RESULT] A|B` for a pairwise rubric (Prometheus' relative grading)."""
    labels = rubric.verdict_labels if rubric.pairwise else [str(s) for s in rubric.scale]
    scores = "|".join(re.escape(s) for s in sorted(labels, key=lambda s: -len(s)))
    n = rubric.max_feedback_chars
    return rf"[^\[\]\n]{{{min(20, n)},{n}}} \[RESULT\] ({scores})"


def transcript(messages: list[dict]) -> str:
    """A plain-text rendering of chat messages, for raw-prompt continuations."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    parts = [f"{names.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "\n\n".join(parts) + "\n\nAssistant: "

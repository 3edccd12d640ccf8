"""Reading a judge's answer: the JSON object, a cut-off JSON prefix, or free text.

Free text covers the common forms: `Score: 4`, `Nota: 4`, `Puntuació: 4`, `Оценка: 4`,
`**Score**: 4`, `[RESULT] 4`, `4/5`. A number outside the rubric's scale is rejected, never
clamped. A pairwise verdict is a label (`A`, `B`, `tie`): `{"verdict": "A"}`, Prometheus'
relative `[RESULT] A`, `Verdict: B`, MT-bench's `[[A]]`, or the label alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = [
    "Verdict",
    "VerdictError",
    "parse_json_verdict",
    "parse_text_verdict",
    "parse_json_label",
    "parse_text_label",
    "partial_json_string",
    "clip_feedback",
]

_LABELS = (
    r"score|rating|grade|mark|note|nota|puntuaci[oó]n?|puntuació|qualificaci[oó]n?|"
    r"calificaci[oó]n|valoraci[oó]n?|punteggio|voto|bewertung|punktzahl|"
    r"оценка|балл|бал|评分|分数|得分"
)
_NUMBER = r"(-?\d+(?:[.,]\d+)?)"
_RESULT = re.compile(r"\[RESULT\]\s*[\[(]?\s*" + _NUMBER, re.IGNORECASE)
# `Score: 4`, `**Score**: 4`, `"score": 4`, `Оценка - 4`, `Score: [4]`, `Nota final: 4/5`
_LABELLED = re.compile(
    r"(?<![\w])[\"'*_#]*(?:final\s+|overall\s+)?(?:" + _LABELS + r")(?:\s+final)?[\"'*_]*"
    r"\s*(?:[:=：\-–—]|\bis\b|\bes\b|\bés\b)\s*[*_\[(\"']*\s*" + _NUMBER + r"(?:\s*/\s*(\d+))?",
    re.IGNORECASE,
)
_FRACTION = re.compile(r"(?<![\w.,/])(-?\d+)\s*(?:/|out of|de|из|sobre)\s*(\d+)(?![\w.,/])",
                       re.IGNORECASE)
_FEEDBACK_LABELS = re.compile(
    r"(?:^|\n)\s*[*_#]*(?:feedback|justification|explanation|reasoning|rationale|comment|"
    r"comentari|comentario|justificaci[oó]n?|justificació|обоснование|пояснение|комментарий|"
    r"отзыв)[*_]*\s*[:：]\s*",
    re.IGNORECASE,
)


class VerdictError(ValueError):
    """The answer holds no usable score; the message says why (kept as the item's reason)."""


@dataclass
class Verdict:
    """A parsed answer: the score (a pairwise verdict's label), the feedback, and where the
    score's digits (the label) start in the text (to find its token among the logprobs)."""

    score: int | str
    feedback: str
    score_offset: int | None = None


def clip_feedback(text: str, limit: int) -> str:
    """Whitespace-normalised feedback, cut at a word boundary to `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def _check_scale(value: str, scale: list[int], where: str) -> int:
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        raise VerdictError(f"{where}: {value!r} is not a number") from None
    if not number.is_integer():
        raise VerdictError(f"{where}: {value} is not an integer score of the scale {scale}")
    if int(number) not in scale:
        raise VerdictError(f"{where}: {int(number)} is outside the scale {scale}")
    return int(number)


def _json_object(text: str) -> tuple[dict, int, int]:
    """The first JSON object of `text`: (object, start, length)."""
    start = text.find("{")
    if start < 0:
        raise VerdictError("the answer holds no JSON object")
    try:
        data, length = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        raise VerdictError(f"the answer is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(data, dict):
        raise VerdictError("the answer's JSON is not an object")
    return data, start, length


def _json_feedback(data: dict, feedback_field: str, max_chars: int) -> str:
    feedback = data.get(feedback_field, data.get("feedback", data.get("justification", "")))
    if not isinstance(feedback, str):
        feedback = json.dumps(feedback, ensure_ascii=False)
    return clip_feedback(feedback, max_chars)


def parse_json_verdict(
    text: str, *, score_field: str, feedback_field: str, scale: list[int], max_chars: int
) -> Verdict:
    """The `{"<feedback_field>": ..., "<score_field>": N}` answer (first JSON object found)."""
    data, start, length = _json_object(text)
    keys = [score_field, "score"] if score_field != "score" else ["score"]
    key = next((k for k in keys if k in data), None)
    if key is None:
        raise VerdictError(f"the answer's JSON has no {score_field!r} key")
    raw = data[key]
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise VerdictError(f"{key!r} is {raw!r}, not a number")
    score = _check_scale(str(raw), scale, f"{key!r}")
    # The score's digits: the last `"key": N` inside the object (never one in trailing text).
    matches = list(re.finditer(r'"' + re.escape(key) + r'"\s*:\s*"?\s*(-?\d)',
                               text[start : start + length]))
    offset = start + matches[-1].start(1) if matches else None
    return Verdict(score, _json_feedback(data, feedback_field, max_chars), offset)


def _check_label(value: str, labels: tuple[str, ...], where: str) -> str:
    found = {label.lower(): label for label in labels}.get(value.strip().lower())
    if found is None:
        raise VerdictError(f"{where}: {value!r} is not a verdict of {list(labels)}")
    return found


def parse_json_label(
    text: str, *, key: str, feedback_field: str, labels: tuple[str, ...], max_chars: int
) -> Verdict:
    """The `{"<feedback_field>": ..., "<key>": "A"}` answer of a pairwise judge."""
    data, start, length = _json_object(text)
    if key not in data:
        raise VerdictError(f"the answer's JSON has no {key!r} key")
    raw = data[key]
    if not isinstance(raw, str):
        raise VerdictError(f"{key!r} is {raw!r}, not one of {list(labels)}")
    label = _check_label(raw, labels, repr(key))
    matches = list(re.finditer(r'"' + re.escape(key) + r'"\s*:\s*"\s*(\w)',
                               text[start : start + length]))
    offset = start + matches[-1].start(1) if matches else None
    return Verdict(label, _json_feedback(data, feedback_field, max_chars), offset)


def _label_pattern(labels: tuple[str, ...]) -> str:
    """The labels as one group; a one-letter label matches its case only (`a` is a word)."""
    parts = [f"(?-i:{re.escape(x)})" if len(x) == 1 else f"(?i:{re.escape(x)})" for x in labels]
    return "(" + "|".join(parts) + r")(?![\w])"


def parse_text_label(text: str, *, labels: tuple[str, ...], max_chars: int) -> Verdict:
    """A pairwise verdict in free text, the rest as feedback: `[RESULT] A` (last) wins, then
    `[[A]]`, then a labelled `Verdict: A` / `Winner: A` / `Better: Response A`, then the label
    alone as the whole answer."""
    names = _label_pattern(labels)
    results = list(re.finditer(r"\[RESULT\]\s*[\[(]?\s*(?:response\s+)?" + names, text,
                               re.IGNORECASE))
    if results:
        m = results[-1]
        feedback = re.sub(r"^\s*(?:###\s*)?feedback\s*:\s*", "", text[: m.start()],
                          flags=re.IGNORECASE)
        return Verdict(_check_label(m.group(1), labels, "[RESULT]"),
                       clip_feedback(feedback, max_chars), m.start(1))
    patterns = (r"\[\[" + names + r"\]\]",
                r"(?<![\w])[\"'*_#]*(?:final\s+)?(?:verdict|winner|better(?:\s+response)?|"
                r"preference|choice)[\"'*_]*\s*(?:[:=：\-–—]|\bis\b)\s*[*_\[(\"']*\s*"
                r"(?:response\s+)?" + names)
    for pattern in patterns:
        m = re.search(pattern, text, re.IGNORECASE)
        if m is not None:
            feedback = _feedback_around(text, m.span())
            return Verdict(_check_label(m.group(1), labels, "verdict"),
                           clip_feedback(feedback, max_chars), m.start(1))
    stripped = text.strip().strip("\"'*.[]()")
    if re.fullmatch(names, stripped, re.IGNORECASE):
        return Verdict(_check_label(stripped, labels, "the answer"), "", text.find(stripped))
    raise VerdictError(f"no verdict found in the answer (expected e.g. '[RESULT] A' or "
                       f"'Verdict: B', one of {list(labels)})")


def partial_json_string(text: str, key: str) -> str | None:
    """The (possibly unterminated) string value of `key` in a cut-off JSON prefix, decoded."""
    match = re.search(r'"' + re.escape(key) + r'"\s*:\s*"', text)
    if match is None:
        return None
    raw = []
    i = match.end()
    while i < len(text):
        ch = text[i]
        if ch == '"':
            break
        if ch == "\\":
            escape = text[i : i + 6] if text[i + 1 : i + 2] == "u" else text[i : i + 2]
            if len(escape) < 2 or (escape[1] == "u" and len(escape) < 6):
                break  # an escape cut in the middle: drop it
            raw.append(escape)
            i += len(escape)
            continue
        raw.append(ch)
        i += 1
    try:
        return json.loads('"' + "".join(raw) + '"')
    except json.JSONDecodeError:
        return "".join(raw)


def _feedback_around(text: str, span: tuple[int, int]) -> str:
    """The feedback part of a free-text answer whose score sits at `span`."""
    labelled = _FEEDBACK_LABELS.search(text)
    if labelled is None:
        rest = text[: span[0]] + " " + text[span[1] :]
    elif labelled.end() <= span[0]:  # "Justification: ... Score: 4"
        rest = text[labelled.end() : span[0]]
    else:  # "Score: 4 Justification: ..."
        rest = text[labelled.end() :]
    return rest.strip().lstrip(".,;:-–—*_#)]\"' ").rstrip("*_#[(\"' ")


def parse_text_verdict(text: str, *, scale: list[int], max_chars: int) -> Verdict:
    """A score in free text, plus the rest as feedback. `[RESULT] N` (last) wins, then a
    labelled score (first), then a fraction `N/max` whose denominator is the scale's top."""
    results = list(_RESULT.finditer(text))
    if results:
        m = results[-1]
        score = _check_scale(m.group(1), scale, "[RESULT]")
        feedback = re.sub(r"^\s*(?:###\s*)?feedback\s*:\s*", "", text[: m.start()],
                          flags=re.IGNORECASE)
        return Verdict(score, clip_feedback(feedback, max_chars), m.start(1))
    m = _LABELLED.search(text)
    if m is not None:
        if m.group(2) is not None and int(m.group(2)) != scale[-1]:
            raise VerdictError(f"score {m.group(0).strip()!r} is not on the scale {scale}")
        score = _check_scale(m.group(1), scale, f"score {m.group(0).strip()!r}")
        feedback = _feedback_around(text, m.span())
        return Verdict(score, clip_feedback(feedback, max_chars), m.start(1))
    for m in _FRACTION.finditer(text):
        if int(m.group(2)) == scale[-1]:
            score = _check_scale(m.group(1), scale, f"score {m.group(0)!r}")
            feedback = _feedback_around(text, m.span())
            return Verdict(score, clip_feedback(feedback, max_chars), m.start(1))
    stripped = text.strip()
    if re.fullmatch(r"-?\d+", stripped):
        return Verdict(_check_scale(stripped, scale, "the answer"), "", text.find(stripped))
    raise VerdictError("no score found in the answer (expected e.g. 'Score: 4' or '[RESULT] 4')")

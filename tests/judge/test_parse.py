"""Parsing judge answers: JSON, cut-off JSON, and the common free-text forms."""

from __future__ import annotations

import pytest

from evalserve.judge.parse import (
    VerdictError,
    clip_feedback,
    parse_json_label,
    parse_json_verdict,
    parse_text_label,
    parse_text_verdict,
    partial_json_string,
)

SCALE = [1, 2, 3, 4, 5]


def _json(text: str, scale: list[int] = SCALE):
    return parse_json_verdict(text, score_field="nota", feedback_field="feedback",
                              scale=scale, max_chars=300)


def test_json_answer_and_score_offset() -> None:
    text = 'Sure: {"feedback": "Bé, però curt.", "nota": 4} trailing'
    verdict = _json(text)
    assert (verdict.score, verdict.feedback) == (4, "Bé, però curt.")
    assert text[verdict.score_offset] == "4"


def test_json_accepts_generic_score_key_and_string_number() -> None:
    assert _json('{"feedback": "ok", "score": "3"}').score == 3


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"feedback": "x", "nota": 7}', "7 is outside the scale"),
        ('{"feedback": "x", "nota": 3.5}', "not an integer"),
        ('{"feedback": "x"}', "no 'nota' key"),
        ('{"feedback": "x", "nota": true}', "not a number"),
        ('{"feedback": "x", "nota": 3', "not valid JSON"),
        ("no json here", "no JSON object"),
        ("[1, 2]", "no JSON object"),
    ],
)
def test_json_failures_say_why(text: str, reason: str) -> None:
    with pytest.raises(VerdictError, match=reason):
        _json(text)


def test_partial_json_string_recovers_cut_feedback() -> None:
    assert partial_json_string('{"feedback": "Bon treball, però', "feedback") == "Bon treball, però"
    assert partial_json_string('{"feedback": "a\\"b\\n', "feedback") == 'a"b\n'
    # an escape cut in the middle is dropped, not decoded wrongly
    assert partial_json_string('{"feedback": "café \\u00', "feedback") == "café "
    assert partial_json_string('{"feedback": "done", "nota": ', "feedback") == "done"
    assert partial_json_string('{"other": "x"}', "feedback") is None


@pytest.mark.parametrize(
    ("text", "score", "feedback"),
    [
        ("Score: 4\nJustification: Accurate and concise.", 4, "Accurate and concise."),
        ("Nota: 3. Cal més detall.", 3, "Cal més detall."),
        ("Puntuació: 5\nComentari: Excel·lent.", 5, "Excel·lent."),
        ("Оценка: 4\nОбоснование: Ответ точен, но неполон.", 4, "Ответ точен, но неполон."),
        ("**Score**: 2\n**Justification**: Off topic.", 2, "Off topic."),
        ("**Score: 5**", 5, ""),
        ("Feedback: The response is correct. [RESULT] 4", 4, "The response is correct."),
        ("Good answer overall. [RESULT] (3)", 3, "Good answer overall."),
        ("I would give it 4/5 because it is mostly right.", 4,
         "I would give it because it is mostly right."),
        ('{"feedback": "fine", "score": 2', 2, '{"feedback": "fine",'),
        ("Justification: Good.\nScore: 5", 5, "Good."),
        ("3", 3, ""),
        ("评分：4 很好", 4, "很好"),
        ("Puntuación: 2. Falta detalle.", 2, "Falta detalle."),
        ("Score: [4] Mostly right.", 4, "Mostly right."),
        ("Overall score is 3", 3, ""),
    ],
)
def test_free_text_forms(text: str, score: int, feedback: str) -> None:
    verdict = parse_text_verdict(text, scale=SCALE, max_chars=300)
    assert verdict.score == score
    assert verdict.feedback == feedback
    assert text[verdict.score_offset] == str(score)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Score: 7", "outside the scale"),
        ("Оценка: 0", "outside the scale"),
        ("[RESULT] 9", "outside the scale"),
        ("Score: 8/10", "not on the scale"),
        ("Score: 4.5", "not an integer"),
        ("A fine answer with no number.", "no score found"),
        ("It costs 3/10 of the price", "no score found"),
    ],
)
def test_free_text_rejects_out_of_scale(text: str, reason: str) -> None:
    with pytest.raises(VerdictError, match=reason):
        parse_text_verdict(text, scale=SCALE, max_chars=300)


def test_result_marker_wins_over_earlier_labels() -> None:
    text = "Score 1 means poor. The answer is right. [RESULT] 5"
    assert parse_text_verdict(text, scale=SCALE, max_chars=300).score == 5


def test_clip_feedback_respects_limit_at_word_boundary() -> None:
    text = "word " * 100
    clipped = clip_feedback(text, 50)
    assert len(clipped) <= 50 and clipped.endswith("…") and "wor…" not in clipped
    assert clip_feedback("  a \n b  ", 50) == "a b"


LABELS = ("A", "B", "tie")


@pytest.mark.parametrize(("text", "label", "feedback"), [
    ("Response A is more complete. [RESULT] A", "A", "Response A is more complete."),
    ("Feedback: B cites the source. [RESULT] B", "B", "B cites the source."),
    ("[RESULT] A first, then on reflection [RESULT] (B)", "B", "[RESULT] A first, then on "
                                                              "reflection"),
    ("Both are right. [[tie]]", "tie", "Both are right."),
    ("Verdict: Response B\nIt is shorter.", "B", "It is shorter."),
    ("TIE", "tie", ""),
])
def test_pairwise_verdicts_in_free_text(text: str, label: str, feedback: str) -> None:
    verdict = parse_text_label(text, labels=LABELS, max_chars=200)
    assert (verdict.score, verdict.feedback) == (label, feedback)
    assert text[verdict.score_offset:].lower().startswith(label.lower())


@pytest.mark.parametrize("text", ["Verdict: a tie is fair", "[RESULT] C", "[RESULT] 4",
                                  "no idea", "A or B"])
def test_text_without_a_pairwise_verdict_is_an_error(text: str) -> None:
    with pytest.raises(VerdictError):
        parse_text_label(text, labels=LABELS, max_chars=200)


def test_prometheus_relative_allows_no_tie() -> None:
    with pytest.raises(VerdictError):
        parse_text_label("Equal. [RESULT] tie", labels=("A", "B"), max_chars=200)


def test_json_pairwise_verdict() -> None:
    text = '{"feedback": "B is right.", "verdict": "B"}'
    verdict = parse_json_label(text, key="verdict", feedback_field="feedback", labels=LABELS,
                               max_chars=200)
    assert (verdict.score, verdict.feedback, text[verdict.score_offset]) == ("B", "B is right.",
                                                                             "B")
    for bad in ('{"verdict": "C"}', '{"verdict": 1}', '{"feedback": "x"}', "B"):
        with pytest.raises(VerdictError):
            parse_json_label(bad, key="verdict", feedback_field="feedback", labels=LABELS,
                             max_chars=200)

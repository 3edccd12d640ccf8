"""Pairwise judging in both orders (`Judge` with a `mode: pairwise` rubric) and
`pairwise_summary`: position bias caught, consistent verdicts kept, verdict probabilities,
failed orders, the Bradley–Terry leaderboard."""

from __future__ import annotations

import asyncio
import json
import math
import re

import numpy as np
import pytest

from evalserve.engines.base import CompletionOutput, GenerationRequest, TokenLogprob
from evalserve.errors import InvalidInputError
from evalserve.judge import Judge, load_rubric
from evalserve.judge.leaderboard import bradley_terry
from evalserve.judge.pairwise import pairwise_summary
from evalserve.judge.prompts import output_schema, prometheus_regex
from tests.fakes import ScriptedEngine, request_text

PREF = load_rubric("pairwise-preference")
RELATIVE = load_rubric("prometheus-relative")
CONTRACT_KEYS = {"id", "score", "feedback", "status", "verdict", "verdicts", "consistent",
                 "first_position_wins", "verdict_probs", "system_a", "system_b"}


class PlainEngine(ScriptedEngine):
    """No constraints, no logprobs (a plain upstream)."""

    supports_constraints = False
    supports_logprobs = False


def _pairs() -> list[dict]:
    """Three pairs; system `long` always gives the longer response, in either slot."""
    return [
        {"id": "p1", "question": "What is 2+2?", "response_a": "4, since two plus two is four.",
         "response_b": "5", "system_a": "long", "system_b": "short"},
        {"id": "p2", "question": "Capital of France?", "response_a": "Rome",
         "response_b": "Paris is the capital of France.", "system_a": "short",
         "system_b": "long"},
        {"id": "p3", "question": "Boiling point of water?",
         "response_a": "100 degrees Celsius at sea level.", "response_b": "Hot.",
         "system_a": "long", "system_b": "short"},
    ]


def _shown(request: GenerationRequest) -> tuple[str, str]:
    """The responses the prompt shows as A and B."""
    match = re.search(r"Response A: (.*)\n\nResponse B: (.*)$", request_text(request), re.S)
    assert match is not None
    return match.group(1).strip(), match.group(2).strip()


def _answer(verdict: str) -> str:
    return json.dumps({"feedback": "Compared both responses.", "verdict": verdict})


async def _grade_all(judge: Judge, items: list[dict]) -> list[dict]:
    grades = await asyncio.gather(*(judge.grade(item, i) for i, item in enumerate(items)))
    return [g.record(judge.rubric) for g in grades]


async def test_a_judge_preferring_the_first_position_is_inconsistent_on_every_pair() -> None:
    engine = ScriptedEngine(lambda r: _answer("A"))
    records = await _grade_all(Judge(engine, PREF), _pairs())
    for record in records:
        assert record["verdicts"] == {"ab": "A", "ba": "B"}
        assert (record["verdict"], record["score"], record["consistent"]) == ("tie", 0.5, False)
        assert record["first_position_wins"] == 2 and record["status"] == "scored"
    summary = pairwise_summary(records)
    assert summary is not None
    assert (summary["pairs"], summary["inconsistent"], summary["consistency_rate"]) == (3, 3, 0.0)
    assert summary["first_position_win_rate"] == 1.0 and summary["orders_judged"] == 6
    assert summary["ties"] == {"long": 3, "short": 3} and summary["wins"] == {"long": 0,
                                                                            "short": 0}
    assert summary["win_rate"] == {"long": 0.5, "short": 0.5}


async def test_a_judge_preferring_the_longer_answer_is_consistent_and_picks_it() -> None:
    def longer(request: GenerationRequest) -> str:
        a, b = _shown(request)
        return _answer("A" if len(a) > len(b) else "B")

    engine = ScriptedEngine(longer)
    records = await _grade_all(Judge(engine, PREF), _pairs())
    assert [r["verdict"] for r in records] == ["A", "B", "A"]
    assert [r["score"] for r in records] == [1.0, 0.0, 1.0]
    assert all(r["consistent"] and r["verdicts"]["ab"] == r["verdicts"]["ba"] for r in records)
    assert [r["first_position_wins"] for r in records] == [1, 1, 1]
    summary = pairwise_summary(records)
    assert summary is not None
    assert summary["wins"] == {"long": 3, "short": 0} and summary["losses"]["short"] == 3
    assert summary["win_rate"] == {"long": 1.0, "short": 0.0}
    assert (summary["consistency_rate"], summary["inconsistent"]) == (1.0, 0)
    assert summary["first_position_win_rate"] == 0.5
    assert [row["system"] for row in summary["leaderboard"]] == ["long", "short"]
    json.dumps(summary, allow_nan=False)


async def test_both_orders_go_to_the_engine_at_once_and_the_second_is_swapped() -> None:
    engine = ScriptedEngine(lambda r: _answer("tie"), delay=0.05)
    item = _pairs()[0]
    record = (await Judge(engine, PREF).grade(item)).record(PREF)
    assert engine.max_in_flight == 2
    shown = sorted(_shown(r) for r in engine.requests)
    assert shown == sorted([(item["response_a"], item["response_b"]),
                            (item["response_b"], item["response_a"])])
    assert record["verdict"] == "tie" and record["consistent"] is True
    assert set(record) == CONTRACT_KEYS
    for request in engine.requests:
        assert request.constraint is not None
        assert request.constraint.json_schema == output_schema(PREF)
        verdict = request.constraint.json_schema["properties"]["verdict"]
        assert verdict == {"type": "string", "enum": ["A", "B", "tie"]}


def _labelled(verdict: str, probs: dict[str, float]) -> CompletionOutput:
    before = '{"feedback": "Compared both responses.", "verdict": "'
    top = [(token, math.log(p)) for token, p in probs.items()]
    logprobs = [TokenLogprob(before, -0.01), TokenLogprob(verdict, math.log(probs[verdict]), top),
                TokenLogprob('"}', -0.01)]
    return CompletionOutput(text=before + verdict + '"}', finish_reason="stop",
                            completion_tokens=3, logprobs=logprobs)


async def test_verdict_probabilities_are_the_mean_of_both_orders_in_the_original_labels() -> None:
    engine = ScriptedEngine(lambda r: _labelled("A", {"A": 0.7, "B": 0.2, "t": 0.1}))
    record = (await Judge(engine, PREF).grade(_pairs()[0])).record(PREF)
    # ab: A .7, B .2, tie .1 (`t` starts only `tie`); ba swapped back: A .2, B .7, tie .1
    assert record["verdict_probs"] == {"A": 0.45, "B": 0.45, "tie": 0.1}
    assert record["score_expected"] == pytest.approx(0.45 + 0.05)
    assert "score_probs" not in record


async def test_an_order_that_never_parses_leaves_the_pair_unscored_with_the_reason() -> None:
    def swapped_fails(request: GenerationRequest) -> str:
        a, _ = _shown(request)
        return "I cannot decide" if a == "5" else _answer("A")

    judge = Judge(PlainEngine(swapped_fails), PREF, retries=0)
    record = (await judge.grade(_pairs()[0])).record(PREF)
    assert record["status"] == "unscored" and record["score"] is None
    assert record["verdict"] is None and record["consistent"] is None
    assert record["verdicts"] == {"ab": "A", "ba": None}
    assert record["reason"] == ("order ba (swapped): the answer holds no JSON object "
                                "(after 1 attempt)")
    assert record["raw"] == "I cannot decide"
    summary = pairwise_summary([record])
    assert summary is not None
    assert (summary["pairs"], summary["unjudged"], summary["orders_judged"]) == (0, 1, 1)
    assert summary["first_position_win_rate"] == 1.0 and summary["consistency_rate"] is None


async def test_systems_default_to_the_labels_and_free_text_verdicts_parse() -> None:
    engine = PlainEngine(lambda r: "Response B is wrong.\nVerdict: A" if _shown(r)[0] == "x"
                         else "[[B]]")
    item = {"question": "q", "response_a": "x", "response_b": "y"}
    record = (await Judge(engine, PREF).grade(item, 7)).record(PREF)
    assert (record["id"], record["system_a"], record["system_b"]) == ("7", "A", "B")
    assert record["verdicts"] == {"ab": "A", "ba": "A"} and record["verdict"] == "A"
    assert record["feedback"] == "Response B is wrong."


async def test_prometheus_relative_is_regex_constrained_and_reads_result_labels() -> None:
    def script(request: GenerationRequest) -> str:
        return "Response A answers it better than B does. [RESULT] A"

    engine = ScriptedEngine(script)
    item = {"id": 1, "instruction": "Name a prime.", "response_a": "7", "response_b": "8"}
    record = (await Judge(engine, RELATIVE).grade(item)).record(RELATIVE)
    assert record["verdicts"] == {"ab": "A", "ba": "B"} and record["verdict"] == "tie"
    assert engine.requests[0].constraint is not None
    regex = engine.requests[0].constraint.regex
    assert regex == prometheus_regex(RELATIVE) and regex.endswith(r"\[RESULT\] (A|B)")
    assert re.fullmatch(regex, script(engine.requests[0]))
    assert "tie" not in regex
    assert "###Response A:\n7" in request_text(engine.requests[0])


async def test_a_pairwise_answer_cut_at_max_tokens_gets_its_verdict_in_a_second_step() -> None:
    def script(request: GenerationRequest) -> CompletionOutput:
        if request.prompt is not None:  # the second step
            return CompletionOutput(text="B", finish_reason="stop", completion_tokens=1)
        return CompletionOutput(text='{"feedback": "Response B is the correct one and',
                                finish_reason="length", completion_tokens=40)

    engine = ScriptedEngine(script)
    record = (await Judge(engine, PREF).grade(_pairs()[0])).record(PREF)
    steps = [r for r in engine.requests if r.prompt is not None]
    assert len(steps) == 2
    assert steps[0].constraint is not None and steps[0].constraint.choice == ("A", "B", "tie")
    assert steps[0].prompt.endswith('"verdict": "')
    assert record["verdicts"] == {"ab": "B", "ba": "A"}
    assert record["feedback"] == "Response B is the correct one and"


def test_pairwise_rubrics_are_checked() -> None:
    base = {"name": "p", "mode": "pairwise", "fields": ["q", "one", "two"],
            "pair_fields": ["one", "two"], "template": "{q} A: {one} B: {two}"}
    rubric = load_rubric(base)
    assert rubric.scale == [0, 1] and rubric.verdict_labels == ("A", "B", "tie")
    assert load_rubric({**base, "allow_tie": False}).verdict_labels == ("A", "B")
    schema = output_schema(load_rubric({**base, "allow_tie": False, "format": "score"}))
    assert schema["properties"] == {"verdict": {"type": "string", "enum": ["A", "B"]}}
    for change, message in [
        ({"pair_fields": ["one", "three"]}, "pair_fields must name two different fields"),
        ({"pair_fields": ["one", "one"]}, "pair_fields must name two different fields"),
        ({"scale": [1, 5]}, "leave scale out or set it to [0, 1]"),
        ({"fields": ["q", "one", "two", "system_a"]}, "pairwise record keys"),
        ({"examples": [{"q": "x", "one": "a", "two": "b", "score": 1, "feedback": "f"}]},
         "takes no examples"),
        ({"score_field": "verdict"}, "reserved"),
    ]:
        with pytest.raises(InvalidInputError) as info:
            load_rubric({**base, **change})
        assert message in info.value.message


def test_pairwise_items_accept_system_names_and_refuse_unknown_fields() -> None:
    judge = Judge(ScriptedEngine(lambda r: ""), PREF)
    judge.validate_item(_pairs()[0], 0)
    with pytest.raises(InvalidInputError) as info:
        judge.validate_item({**_pairs()[0], "system_c": "x"}, 4)
    assert "items[4] has unknown field(s) ['system_c']" in info.value.message
    pointwise = Judge(ScriptedEngine(lambda r: ""), load_rubric("judge-1-5"))
    with pytest.raises(InvalidInputError):
        pointwise.validate_item({"question": "q", "answer": "a", "system_a": "x"}, 0)


def test_no_pairwise_records_no_summary() -> None:
    assert pairwise_summary([]) is None
    assert pairwise_summary([{"id": "1", "score": 4, "status": "scored"}]) is None


def _comparisons(strengths: dict[str, float], n: int, seed: int) -> list[tuple[str, str, float]]:
    rng = np.random.default_rng(seed)
    names = list(strengths)
    rows = []
    for _ in range(n):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + math.exp(strengths[b] - strengths[a]))
        rows.append((str(a), str(b), 1.0 if rng.random() < p else 0.0))
    return rows


def test_bradley_terry_recovers_a_known_order_of_four_systems() -> None:
    strengths = {"gold": 1.5, "silver": 0.5, "bronze": -0.5, "tin": -1.5}
    board = bradley_terry(_comparisons(strengths, 600, seed=3), seed=0)
    assert [row["system"] for row in board] == ["gold", "silver", "bronze", "tin"]
    assert [row["rank"] for row in board] == [1, 2, 3, 4]
    for row in board:
        assert row["ci_low"] < row["rating"] < row["ci_high"]
        assert abs(row["rating"] - strengths[row["system"]]) < 0.4
    assert sum(row["rating"] for row in board) == pytest.approx(0.0, abs=1e-3)
    assert bradley_terry(_comparisons(strengths, 600, seed=3), seed=0) == board


def test_bradley_terry_counts_a_tie_as_half_a_win_each() -> None:
    tied = bradley_terry([("x", "y", 0.5)] * 10, resamples=20)
    assert tied[0]["rating"] == pytest.approx(0.0, abs=1e-6)
    assert tied[1]["rating"] == pytest.approx(0.0, abs=1e-6)
    # 3 wins + 2 ties each way = x scores 4 of 7 against y
    rows = [("x", "y", 1.0)] * 3 + [("x", "y", 0.5)] * 2 + [("y", "x", 1.0)] * 2
    board = {r["system"]: r["rating"] for r in bradley_terry(rows, resamples=20)}
    assert board["x"] - board["y"] == pytest.approx(math.log(4 / 3), abs=0.02)
    assert bradley_terry([("x", "x", 1.0)]) == []

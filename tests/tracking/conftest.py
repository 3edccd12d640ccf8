"""Fake judge records (no model) for the tracking tests."""

from __future__ import annotations

from typing import Any

import pytest

from evalserve.judge.rubric import Rubric, load_rubric


@pytest.fixture
def rubric() -> Rubric:
    """A seed-004 shaped rubric: `inputs`/`predictions` items, 1-5, `justification` output."""
    return load_rubric({
        "name": "qa-1-5",
        "instructions": "Grade the answer from {scale_min} to {scale_max}.",
        "template": "Question: {inputs}\nAnswer: {predictions}",
        "fields": ["inputs", "predictions"],
        "scale": [1, 2, 3, 4, 5],
        "feedback_field": "justification",
    })


@pytest.fixture
def items() -> list[dict[str, Any]]:
    return [
        {"inputs": "Capital of France?", "predictions": "Paris."},
        {"inputs": "2 + 2?", "predictions": "5"},
        {"inputs": "Largest planet?", "predictions": "Jupiter, a gas giant."},
        {"inputs": "Boiling point of water?", "predictions": "I like turtles."},
    ]


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """What `Grade.record(rubric)` gives for `items`, one unscored, with a metric each."""
    return [
        {"id": "0", "score": 5, "justification": "Correct.", "status": "scored",
         "score_expected": 4.6, "score_probs": {"4": 0.4, "5": 0.6}, "metrics": {"rouge_l": 0.5}},
        {"id": "1", "score": 1, "justification": "Wrong sum.", "status": "scored",
         "score_expected": 1.4, "metrics": {"rouge_l": 0.0}},
        {"id": "2", "score": 5, "justification": "Right, a bit long.", "status": "scored",
         "score_expected": 4.0, "metrics": {"rouge_l": 0.25}},
        {"id": "3", "score": None, "justification": None, "status": "unscored",
         "raw": "turtles turtles", "reason": "no score in the output",
         "metrics": {"rouge_l": 0.25}},
    ]


@pytest.fixture
def graded_records(records) -> list[dict[str, Any]]:
    """`records` whose items carry human grades (as the record's `human_score`), plus two
    more: one scored item without a human grade, one with a judge/human gap of 3."""
    human = [4, 1, 5, 3]
    out = [{**r, "human_score": float(h)} for r, h in zip(records, human, strict=True)]
    out.append({"id": "4", "score": 3, "justification": "Partly.", "status": "scored",
                "score_expected": 3.2})
    out.append({"id": "5", "score": 2, "justification": "Weak.", "status": "scored",
                "score_expected": 2.5, "human_score": 5.0})
    return out


@pytest.fixture
def graded_items(items) -> list[dict[str, Any]]:
    """The items of `graded_records` (the human grade is an item field too)."""
    human = [4, 1, 5, 3]
    out = [{**i, "human_score": h} for i, h in zip(items, human, strict=True)]
    return [*out, {"inputs": "Colour of the sky?", "predictions": "Blue, mostly."},
            {"inputs": "Author of Hamlet?", "predictions": "Marlowe."}]

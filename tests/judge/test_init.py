"""The public surface of `evalserve.judge`, pinned (the jobs layer builds on these names)."""

from __future__ import annotations

import dataclasses
import inspect

import evalserve.judge as judge


def test_public_names() -> None:
    assert sorted(judge.__all__) == ["Grade", "Judge", "Rubric", "list_rubrics", "load_rubric",
                                     "load_rubric_file", "rubric_from_prompt_file"]


def test_agreed_signatures() -> None:
    init = inspect.signature(judge.Judge.__init__)
    assert list(init.parameters) == ["self", "engine", "rubric", "temperature", "max_tokens",
                                     "retries", "seed", "model", "background"]
    assert init.parameters["retries"].default == 2
    assert [f.name for f in dataclasses.fields(judge.Grade)] == [
        "item_id", "status", "score", "feedback", "score_expected", "score_probs", "raw",
        "reason", "attempts", "human_score", "pair"]
    assert list(inspect.signature(judge.rubric_from_prompt_file).parameters)[:3] == [
        "path", "scale", "name"]

"""How jobs reach the judge: `JudgeKit` loads rubrics (by name, inline, from RUBRICS_DIR) and
builds a `Grader` that grades items into records keyed by the rubric's names."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from evalserve.engines.base import GenerationRequest
from evalserve.errors import (
    ConfigurationError,
    EngineError,
    EngineUnavailableError,
    InvalidInputError,
    NotFoundError,
)
from evalserve.jobs.grading import DEFAULT_RUBRIC, Grader, JudgeKit
from evalserve.jobs.models import JobOptions
from evalserve.jobs.panel import panel_options
from evalserve.judge.rubric import Rubric, load_rubric
from evalserve.settings import load_settings
from tests.fakes import MultiModelEngine, ScriptedEngine, request_text
from tests.jobs.helpers import answer

ITEM = {"id_alumno": "A001", "curso": "3r ESO", "consigna": "Explica la fotosíntesi",
        "respuesta": "Les plantes fan menjar amb la llum."}
INLINE = {"name": "brevity", "template": "Answer: {answer}", "fields": ["answer"],
          "scale": [0, 1], "instructions": "Score 1 if the answer is short."}


def teacher_answer(request: GenerationRequest) -> str:
    return json.dumps({"feedback": "Bon treball per a 3r ESO.", "nota": 4})


def test_no_rubric_is_the_seed_rubric() -> None:
    name, rubric = JudgeKit().load_rubric(None)
    assert name == DEFAULT_RUBRIC == "teacher-eval-ca"
    assert rubric["score_field"] == "nota" and rubric["id_field"] == "id_alumno"


def test_a_rubric_by_name_is_its_canonical_json_dict() -> None:
    name, rubric = JudgeKit().load_rubric("judge-1-5")
    assert name == "judge-1-5"
    assert rubric == json.loads(json.dumps(rubric))  # storable as it is
    assert (rubric["scale"], rubric["feedback_field"]) == ([1, 2, 3, 4, 5], "justification")
    assert Rubric.model_validate(rubric) == load_rubric("judge-1-5")


def test_an_inline_rubric_is_validated_and_named_by_itself() -> None:
    name, rubric = JudgeKit().load_rubric(INLINE)
    assert name == "brevity"
    assert (rubric["fields"], rubric["scale"], rubric["score_field"]) == (["answer"], [0, 1],
                                                                          "score")


def test_an_unknown_rubric_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="no rubric named 'nope'; known rubrics: ") as info:
        JudgeKit().load_rubric("nope")
    assert "judge-1-5" in info.value.message and "teacher-eval-ca" in info.value.message


def test_a_broken_inline_rubric_says_which_key() -> None:
    broken = {key: value for key, value in INLINE.items() if key != "template"}
    with pytest.raises(InvalidInputError, match=r"invalid rubric 'brevity' \(inline\): template"):
        JudgeKit().load_rubric(broken)


def test_rubrics_dir_comes_first(tmp_path: Path) -> None:
    (tmp_path / "judge-1-5.yaml").write_text(
        "template: 'Q: {question}'\nfields: [question]\nscale: [1, 2, 3]\n", encoding="utf-8")
    name, rubric = JudgeKit(tmp_path).load_rubric("judge-1-5")
    assert (name, rubric["scale"], rubric["fields"]) == ("judge-1-5", [1, 2, 3], ["question"])
    assert JudgeKit(tmp_path).load_rubric("teacher-eval-ca")[0] == "teacher-eval-ca"


def test_a_missing_rubrics_dir_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="RUBRICS_DIR=.* is not a directory"):
        JudgeKit(tmp_path / "absent").load_rubric("judge-1-5")


async def test_a_grader_grades_into_the_rubric_record() -> None:
    engine = ScriptedEngine(teacher_answer)
    kit = JudgeKit()
    grader = kit.grader(engine, kit.load_rubric("teacher-eval-ca")[1])
    grader.validate_item(ITEM, 0)
    assert grader.item_id(ITEM, 7) == "A001"
    status, score, record = await grader.grade(ITEM, 7)
    assert (status, score) == ("scored", 4)
    assert record == {"id_alumno": "A001", "nota": 4, "feedback": "Bon treball per a 3r ESO.",
                      "status": "scored"}
    assert len(engine.requests) == 1


def test_a_grader_validates_items_against_its_rubric() -> None:
    kit = JudgeKit()
    grader = kit.grader(ScriptedEngine(teacher_answer), kit.load_rubric(None)[1])
    incomplete = {k: v for k, v in ITEM.items() if k != "respuesta"}
    with pytest.raises(InvalidInputError, match=r"items\[2\] lacks the field\(s\) \['respuesta'\]"):
        grader.validate_item(incomplete, 2)


async def test_the_kit_settings_reach_the_engine() -> None:
    engine = ScriptedEngine(teacher_answer)
    kit = JudgeKit(max_tokens=40, temperature=0.3, seed=11)
    await kit.grader(engine, kit.load_rubric(None)[1]).grade(ITEM, 0)
    request = engine.requests[0]
    assert (request.max_tokens, request.temperature, request.seed) == (40, 0.3, 11)


@pytest.mark.parametrize(("retries", "requests", "reason"), [
    (0, 1, "(after 1 attempt)"),
    (2, 3, "(after 3 attempts)"),
])
async def test_unparseable_answers_are_retried_then_unscored(retries: int, requests: int,
                                                              reason: str) -> None:
    engine = ScriptedEngine(lambda r: "I cannot grade this.")
    kit = JudgeKit(retries=retries)
    status, score, record = await kit.grader(engine, kit.load_rubric(None)[1]).grade(ITEM, 0)
    assert (status, score) == ("unscored", None)
    assert record["reason"].endswith(reason)
    assert record["raw"] == "I cannot grade this."
    assert len(engine.requests) == requests


@pytest.mark.parametrize(("rubric", "record"), [
    ("teacher-eval-ca", {"id_alumno": "A009", "nota": None, "feedback": None,
                         "status": "unscored", "reason": "prompt too long"}),
    ("judge-1-5", {"id": "A009", "score": None, "justification": None, "status": "unscored",
                   "reason": "prompt too long"}),
])
def test_failed_record_uses_the_rubric_names(rubric: str, record: dict) -> None:
    kit = JudgeKit()
    grader = kit.grader(ScriptedEngine(teacher_answer), kit.load_rubric(rubric)[1])
    assert grader.failed_record("A009", "prompt too long") == record


def test_from_settings_takes_rubrics_dir_and_only_an_explicit_max_new_tokens(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    default = JudgeKit.from_settings(load_settings())
    assert (default.rubrics_dir, default.max_tokens) == (None, None)  # each rubric's budget
    monkeypatch.setenv("RUBRICS_DIR", str(tmp_path))
    monkeypatch.setenv("MAX_NEW_TOKENS", "256")  # the default value, but set on purpose
    kit = JudgeKit.from_settings(load_settings())
    assert (kit.rubrics_dir, kit.max_tokens) == (tmp_path, 256)


async def test_an_explicit_max_new_tokens_caps_the_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_NEW_TOKENS", "64")
    engine = ScriptedEngine(teacher_answer)
    kit = JudgeKit.from_settings(load_settings())
    await kit.grader(engine, kit.load_rubric(None)[1]).grade(ITEM, 0)
    assert engine.requests[0].max_tokens == 64


# --- juries and repeated sampling ---------------------------------------------------------

def variant(word: str, **extra: object) -> dict:
    """An inline rubric on teacher-eval-ca's fields, names and scale whose prompt says `word`
    (so a scripted engine can answer each judge differently)."""
    return {"name": word.lower(), "template": f"{word}: {{consigna}} {{respuesta}} {{curso}}",
            "fields": ["id_alumno", "curso", "consigna", "respuesta"], "id_field": "id_alumno",
            "score_field": "nota", "scale": [0, 1, 2, 3, 4, 5], **extra}


def by_word(scores: dict[str, int | str | Exception], default: int = 5):
    """A script answering `scores[word]` to a prompt containing `word` (an exception is
    raised, a string answered as it is), else `default`."""
    def script(request: GenerationRequest) -> str:
        text = request_text(request)
        for word, value in scores.items():
            if word in text:
                if isinstance(value, Exception):
                    raise value
                return value if isinstance(value, str) else answer(value, f"{word} says")
        return answer(default, "teacher says")

    return script


async def jury(engine: ScriptedEngine, judges: list[dict], kit: JudgeKit | None = None,
               **options: object) -> Grader:
    """The grader of a teacher-eval-ca job with these judges, through `panel_options`."""
    kit = kit or JudgeKit()
    name, rubric = kit.load_rubric(None)
    resolved = await panel_options(kit, engine, name, rubric, judges=judges, **options)
    return kit.grader(engine, rubric, JobOptions(**resolved))


FOUR = [{"name": "teacher"}, {"rubric": variant("STRICT")}, {"rubric": variant("MILD")},
        {"rubric": variant("LENIENT"), "name": "kind"}]
FOUR_SCORES = {"STRICT": 1, "MILD": 2, "LENIENT": 5}  # the teacher rubric: 5


@pytest.mark.parametrize(("aggregate", "expected", "feedback"), [
    ("mean", 3.25, "MILD says"),       # (5 + 1 + 2 + 5) / 4; MILD's 2 is nearest 3.25
    ("median", 3.5, "teacher says"),   # 2 and 5 are as near; the first in the jury's order
    ("majority", 5, "teacher says"),
])
async def test_a_jury_aggregates_its_judges_scores(aggregate: str, expected: float,
                                                   feedback: str) -> None:
    engine = ScriptedEngine(by_word(FOUR_SCORES), delay=0.02)
    grader = await jury(engine, FOUR, aggregate=aggregate)
    status, score, record = await grader.grade({**ITEM, "human_score": 3}, 0)
    assert (status, score) == ("scored", expected)
    assert record["nota"] == expected and record["feedback"] == feedback
    assert record["judges"] == [
        {"judge": "teacher", "model": "scripted", "rubric": "teacher-eval-ca",
         "status": "scored", "score": 5, "score_expected": None, "feedback": "teacher says"},
        {"judge": "strict", "model": "scripted", "rubric": "strict", "status": "scored",
         "score": 1, "score_expected": None, "feedback": "STRICT says"},
        {"judge": "mild", "model": "scripted", "rubric": "mild", "status": "scored",
         "score": 2, "score_expected": None, "feedback": "MILD says"},
        {"judge": "kind", "model": "scripted", "rubric": "lenient", "status": "scored",
         "score": 5, "score_expected": None, "feedback": "LENIENT says"},
    ]
    assert (record["aggregate"], record["judges_successful"]) == (aggregate, 4)
    assert (record["id_alumno"], record["status"], record["human_score"]) == ("A001", "scored",
                                                                              3.0)
    assert engine.max_in_flight == 4  # the judges of one item ask at once
    assert len(engine.requests) == 4


THREE = [{"name": "teacher"}, {"rubric": variant("STRICT")}, {"rubric": variant("BROKEN")}]


async def test_a_failing_judge_leaves_the_item_scored_when_min_successful_allows() -> None:
    engine = ScriptedEngine(by_word({"STRICT": 1, "BROKEN": EngineError("upstream 500")}))
    grader = await jury(engine, THREE, min_successful=2)
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score, record["judges_successful"]) == ("scored", 3.0, 2)
    assert record["judges"][2] == {"judge": "broken", "model": "scripted", "rubric": "broken",
                                   "status": "error", "score": None, "score_expected": None,
                                   "feedback": None, "reason": "upstream 500"}
    assert "reason" not in record


async def test_a_failing_judge_makes_the_item_an_error_below_min_successful() -> None:
    """min_successful defaults to every judge: one failing judge of three is an error item
    whose reason says how many scored, with every judge's result."""
    engine = ScriptedEngine(by_word({"STRICT": 1, "BROKEN": EngineError("upstream 500")}))
    grader = await jury(engine, THREE)
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score) == ("error", None)
    assert (record["nota"], record["feedback"], record["status"]) == (None, None, "error")
    assert record["reason"] == "2 of 3 judges scored the item; the job needs min_successful=3"
    assert record["error"]["message"] == "upstream 500"
    assert [j["status"] for j in record["judges"]] == ["scored", "scored", "error"]
    assert record["judges_successful"] == 2


async def test_judges_that_answer_without_a_score_make_the_item_unscored() -> None:
    engine = ScriptedEngine(by_word({"STRICT": "I cannot grade this.", "BROKEN": 3}))
    grader = await jury(engine, THREE, kit=JudgeKit(retries=0), min_successful=3)
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score) == ("unscored", None)
    assert record["reason"] == "2 of 3 judges scored the item; the job needs min_successful=3"
    assert record["judges"][1]["status"] == "unscored"
    assert "error" not in record


async def test_a_jury_whose_judges_all_fail_raises_like_one_judge() -> None:
    """No judge answered: the item fails as one judge's would (retried when transient)."""
    engine = ScriptedEngine(by_word({}, default=0))
    engine.script = lambda r: (_ for _ in ()).throw(EngineError("down"))
    grader = await jury(engine, THREE, min_successful=1)
    with pytest.raises(EngineError, match="down"):
        await grader.grade(ITEM, 0)


async def test_a_gone_engine_fails_the_jury_even_when_others_score() -> None:
    engine = ScriptedEngine(by_word({"BROKEN": EngineUnavailableError("model unloaded")}))
    grader = await jury(engine, THREE, min_successful=1)
    with pytest.raises(EngineUnavailableError):
        await grader.grade(ITEM, 0)


def by_seed(scores: dict[int, int | str]):
    def script(request: GenerationRequest) -> str:
        value = scores[request.seed]
        return value if isinstance(value, str) else answer(value, f"seed {request.seed}")

    return script


async def sampled(engine: ScriptedEngine, kit: JudgeKit | None = None,
                  **options: object) -> Grader:
    kit = kit or JudgeKit()
    name, rubric = kit.load_rubric(None)
    resolved = await panel_options(kit, engine, name, rubric, **options)
    return kit.grader(engine, rubric, JobOptions(**resolved))


SEEDED = {0: 3, 3: 4, 6: 4, 9: 2, 12: 4}  # JudgeKit's seeds of 5 samples, retries=2


@pytest.mark.parametrize(("reducer", "expected", "feedback"), [
    ("mean", 3.4, "seed 0"),   # 17 / 5; 3 is nearest
    ("median", 4, "seed 3"),
    ("mode", 4, "seed 3"),
])
async def test_samples_are_reduced_with_their_spread(reducer: str, expected: float,
                                                     feedback: str) -> None:
    engine = ScriptedEngine(by_seed(SEEDED))
    grader = await sampled(engine, samples=5, reducer=reducer)
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score, record["nota"], record["feedback"]) == ("scored", expected,
                                                                   expected, feedback)
    assert record["samples"] == [3, 4, 4, 2, 4]
    assert record["reducer"] == reducer
    assert record["spread"] == statistics.pstdev([3, 4, 4, 2, 4])
    assert sorted(r.seed for r in engine.requests) == [0, 3, 6, 9, 12]
    assert {r.temperature for r in engine.requests} == {0.7}  # the default sample temperature


async def test_samples_are_reproducible_and_take_the_jobs_temperature() -> None:
    engine = ScriptedEngine(by_seed({11: 1, 14: 5, 17: 3}))
    kit = JudgeKit(seed=11)
    first = await (await sampled(engine, kit, samples=3, temperature=1.2)).grade(ITEM, 0)
    again = await (await sampled(engine, kit, samples=3, temperature=1.2)).grade(ITEM, 0)
    assert first == again
    assert first[2]["samples"] == [1, 5, 3] and first[1] == 3.0
    assert {r.temperature for r in engine.requests} == {1.2}


async def test_failed_samples_are_none_and_the_rest_are_reduced() -> None:
    engine = ScriptedEngine(by_seed({0: 2, 1: "nope", 2: 4}))
    grader = await sampled(engine, JudgeKit(retries=0), samples=3, reducer="mean")
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score, record["samples"], record["spread"]) == ("scored", 3.0,
                                                                    [2, None, 4], 1.0)


async def test_no_usable_sample_is_unscored_and_failing_ones_raise() -> None:
    grader = await sampled(ScriptedEngine(lambda r: "nope"), JudgeKit(retries=0), samples=2)
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score, record["samples"], record["spread"]) == ("unscored", None,
                                                                    [None, None], None)
    assert record["reason"].startswith("none of the 2 samples gave a usable score: ")

    def down(request: GenerationRequest) -> str:
        raise EngineError("down")

    failing = await sampled(ScriptedEngine(down), samples=2)
    with pytest.raises(EngineError, match="down"):
        await failing.grade(ITEM, 0)


async def test_every_item_must_suit_every_judges_rubric() -> None:
    narrow = variant("NARROW", fields=["id_alumno", "respuesta"],
                     template="NARROW: {respuesta}")
    grader = await jury(ScriptedEngine(by_word({})), [{}, {"rubric": narrow}])
    with pytest.raises(InvalidInputError, match=r"items\[0\] has unknown field\(s\) "
                                                r"\['consigna', 'curso'\]; rubric 'narrow'"):
        grader.validate_item(ITEM, 0)


# --- the judge model, and juries that sample ------------------------------------------------

def per_model(**scores: int | Exception) -> MultiModelEngine:
    """An engine serving the models named by `scores`, each answering its score (an exception
    is raised: that model's calls fail)."""
    def script(value: int | Exception):
        def answer_it(request: GenerationRequest) -> str:
            if isinstance(value, Exception):
                raise value
            return answer(value, f"{request.model} says")
        return answer_it

    return MultiModelEngine({name: script(value) for name, value in scores.items()})


async def test_the_jobs_model_is_on_every_request() -> None:
    engine = per_model(small=1, large=4)
    grader = await sampled(engine, model="large")
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score, record["feedback"]) == ("scored", 4, "large says")
    assert [r.model for r in engine.requests] == ["large"]
    assert all(r.background for r in engine.requests)  # a job's work


async def test_no_job_model_asks_the_engines_own() -> None:
    engine = per_model(small=1, large=4)
    assert (await (await sampled(engine)).grade(ITEM, 0))[1] == 1
    assert [r.model for r in engine.requests] == [None]


async def test_each_judge_asks_its_own_model() -> None:
    engine = per_model(small=1, large=4)
    grader = await jury(engine, [{"model": "small"}, {"model": "large"}], model="large")
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score) == ("scored", 2.5)
    assert [(j["model"], j["score"], j["feedback"]) for j in record["judges"]] == [
        ("small", 1, "small says"), ("large", 4, "large says")]
    assert sorted(r.model for r in engine.requests) == ["large", "small"]


@pytest.mark.parametrize(("min_successful", "status", "score"), [(1, "scored", 4),
                                                                  (2, "error", None)])
async def test_a_jury_whose_one_model_fails_honours_min_successful(
        min_successful: int, status: str, score: float | None) -> None:
    engine = per_model(small=EngineError("small is down"), large=4)
    grader = await jury(engine, [{"model": "small"}, {"model": "large"}],
                        min_successful=min_successful)
    got = await grader.grade(ITEM, 0)
    assert got[:2] == (status, score)
    record = got[2]
    assert [(j["model"], j["status"], j.get("reason")) for j in record["judges"]] == [
        ("small", "error", "small is down"), ("large", "scored", None)]
    assert record["judges_successful"] == 1
    if status == "error":
        assert record["reason"] == ("1 of 2 judges scored the item; the job needs "
                                    "min_successful=2")
        assert record["error"]["message"] == "small is down"
    else:
        assert "reason" not in record and "error" not in record


def by_model_and_seed(scores: dict[str, dict[int, int]]) -> MultiModelEngine:
    def script(table: dict[int, int]):
        return lambda r: answer(table[r.seed], f"seed {r.seed}")

    return MultiModelEngine({name: script(table) for name, table in scores.items()})


async def test_a_jury_that_samples_reduces_each_judge_then_aggregates() -> None:
    """Two judges x 3 samples (retries=2: seeds 0, 3, 6 for the first judge, 9, 12, 15 for
    the second): each judge's score is the median of its samples, the item's their mean."""
    engine = by_model_and_seed({"small": {0: 1, 3: 2, 6: 2}, "large": {9: 5, 12: 3, 15: 4}})
    grader = await jury(engine, [{"model": "small"}, {"model": "large"}], samples=3,
                        reducer="median")
    status, score, record = await grader.grade({**ITEM, "human_score": "3,5"}, 0)
    assert (status, score) == ("scored", 3.0)  # (2 + 4) / 2
    small, large = record["judges"]
    assert (small["score"], small["samples"], small["spread"]) == (
        2, [1, 2, 2], statistics.pstdev([1, 2, 2]))
    assert (large["score"], large["samples"], large["spread"]) == (
        4, [5, 3, 4], statistics.pstdev([5, 3, 4]))
    assert (small["feedback"], large["feedback"]) == ("seed 3", "seed 15")
    assert (record["aggregate"], record["reducer"], record["judges_successful"]) == (
        "mean", "median", 2)
    assert record["human_score"] == 3.5
    assert sorted(r.seed for r in engine.requests) == [0, 3, 6, 9, 12, 15]
    assert {r.temperature for r in engine.requests} == {0.7}
    assert "samples" not in record  # the samples are each judge's


async def test_a_sampling_judge_whose_samples_all_fail_is_an_error_entry() -> None:
    engine = per_model(small=EngineError("small is down"), large=4)
    grader = await jury(engine, [{"model": "small"}, {"model": "large"}], samples=2,
                        min_successful=1)
    status, score, record = await grader.grade(ITEM, 0)
    assert (status, score) == ("scored", 4.0)
    assert record["judges"][0] == {
        "judge": "teacher-eval-ca-1", "model": "small", "rubric": "teacher-eval-ca",
        "status": "error", "score": None, "score_expected": None, "feedback": None,
        "reason": "small is down", "samples": [None, None], "spread": None}
    assert record["judges"][1]["samples"] == [4, 4]

"""Submission-time checks of the jury and sampling options (`panel_options`): what is resolved
and stored, and the 422 of each bad option, naming it."""

from __future__ import annotations

import pytest

from evalserve.engines.base import ModelInfo
from evalserve.errors import InvalidInputError
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.panel import panel_options
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import answer


class TwoModels(ScriptedEngine):
    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(id="scripted"), ModelInfo(id="other")]


async def resolve(**options: object) -> dict:
    kit = JudgeKit()
    name, rubric = kit.load_rubric(None)
    return await panel_options(kit, TwoModels(lambda r: answer()), name, rubric, **options)


async def test_no_option_resolves_to_nothing() -> None:
    assert await resolve() == {}


async def test_judges_are_resolved_with_names_models_and_rubrics() -> None:
    kit = JudgeKit()
    _, teacher = kit.load_rubric(None)
    out = await resolve(judges=[{}, {"model": "other"}, {"name": "x", "rubric": "teacher-eval-ca"}])
    assert [(j["name"], j["model"], j["rubric_name"]) for j in out["judges"]] == [
        ("teacher-eval-ca-1", "scripted", "teacher-eval-ca"),
        ("teacher-eval-ca-2", "other", "teacher-eval-ca"),
        ("x", "scripted", "teacher-eval-ca")]
    assert all(j["rubric"] == teacher for j in out["judges"])
    assert (out["aggregate"], out["min_successful"]) == ("mean", 3)
    assert "samples" not in out


async def test_the_job_model_is_checked_and_is_its_judges_default() -> None:
    assert await resolve(model="other") == {"model": "other"}
    out = await resolve(model="other", judges=[{}, {"model": "scripted"}])
    assert [j["model"] for j in out["judges"]] == ["other", "scripted"]
    assert (await resolve(judges=[{}]))["judges"][0]["model"] == "scripted"


async def test_the_embedded_engine_offers_its_one_model() -> None:
    kit = JudgeKit()
    name, rubric = kit.load_rubric(None)
    engine = ScriptedEngine(lambda r: answer())
    assert await panel_options(kit, engine, name, rubric, model="scripted") == {
        "model": "scripted"}
    with pytest.raises(InvalidInputError, match="served models: scripted "):
        await panel_options(kit, engine, name, rubric, model="other")


async def test_a_jury_may_sample() -> None:
    out = await resolve(judges=[{}, {"model": "other"}], samples=3, reducer="median")
    assert (len(out["judges"]), out["samples"], out["reducer"], out["temperature"]) == (
        2, 3, "median", 0.7)


async def test_samples_default_to_mean_at_temperature_0_7() -> None:
    assert await resolve(samples=3) == {"samples": 3, "reducer": "mean", "temperature": 0.7}
    assert await resolve(samples=2, reducer="mode", temperature=1) == {
        "samples": 2, "reducer": "mode", "temperature": 1.0}
    assert await resolve(samples=1, temperature=0.2) == {"temperature": 0.2}


@pytest.mark.parametrize(("options", "message"), [
    ({"judges": [{"model": "gpt-x"}]},
     "judges[0].model 'gpt-x' is not served here; served models: scripted, other "
     "(or null for the job's own)"),
    ({"model": "gpt-x"}, "model 'gpt-x' is not served here; served models: scripted, other "
                         "(or null for the engine's own)"),
    ({"model": 3}, "model 3 is not served here; served models: scripted, other"),
    ({"judges": [{"rubric": "judge-1-5"}]},
     "judges[0].rubric 'judge-1-5' scores on [1, 2, 3, 4, 5] but the job's rubric "
     "'teacher-eval-ca' on [0, 1, 2, 3, 4, 5]"),
    ({"judges": [{"rubric": "nope"}]}, "judges[0].rubric: no rubric named 'nope'"),
    ({"judges": [{"rubric": 3}]}, "judges[0].rubric must be a rubric name"),
    ({"judges": [{"modle": "m"}]}, "judges[0] has unknown key(s) ['modle']"),
    ({"judges": ["m"]}, "judges[0] must be an object"),
    ({"judges": []}, "judges must be a list of 1 to 10 judges"),
    ({"judges": [{"name": "a"}, {"name": "a"}]}, "the name(s) ['a'] are given to more than one"),
    ({"judges": [{}], "min_successful": 2}, "min_successful must be an integer from 1 to 1"),
    ({"judges": [{}], "aggregate": "vote"}, "aggregate must be one of mean, median, majority"),
    ({"aggregate": "mean"}, "aggregate applies to juries: give judges too"),
    ({"min_successful": 1}, "min_successful applies to juries"),
    ({"judges": [{}], "samples": 2, "temperature": 0}, "temperature must be > 0 with samples=2"),
    ({"samples": 21}, "samples must be an integer from 1 to 20, got 21"),
    ({"samples": True}, "samples must be an integer from 1 to 20"),
    ({"samples": 3, "temperature": 0}, "temperature must be > 0 with samples=3"),
    ({"samples": 3, "reducer": "max"}, "reducer must be one of mean, median, mode"),
    ({"reducer": "mean"}, "reducer applies to repeated sampling: give samples >= 2"),
    ({"temperature": 3}, "temperature must be a number from 0 to 2.0, got 3"),
])
async def test_a_bad_option_is_a_422_naming_it(options: dict, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        await resolve(**options)
    assert message in info.value.message
    assert info.value.status == 422


async def test_every_judge_reads_human_grades_from_the_jobs_field() -> None:
    kit = JudgeKit()
    name, rubric = kit.load_rubric(None)
    rubric = {**rubric, "human_field": "nota_profe"}
    out = await panel_options(kit, TwoModels(lambda r: answer()), name, rubric,
                              judges=[{"rubric": "teacher-eval-ca"}, {}])
    assert [j["rubric"]["human_field"] for j in out["judges"]] == ["nota_profe"] * 2

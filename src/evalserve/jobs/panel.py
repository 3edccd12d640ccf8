"""The judge model, jury and repeated-sampling options of a submission, checked and resolved
into the `JobOptions` fields a job stores (so a resumed job grades with the same judges).

`model` (the job's judge model) and each judge's `model` must be one of `await
engine.models()`: with a router every routed model, on the embedded engine the one it serves;
a judge without one takes the job's (else the engine's own). A jury may sample too: each
judge then grades each item `samples` times. Neither juries nor samples apply to a pairwise
rubric. Every problem is an `InvalidInputError` (422) naming the option (an unknown model's
lists the available ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evalserve.errors import EvalserveError, InvalidInputError
from evalserve.jobs.grading import SAMPLE_TEMPERATURE, JudgeKit

__all__ = ["panel_options", "MAX_JUDGES", "MAX_TEMPERATURE"]

#: Most judges in one jury.
MAX_JUDGES = 10
#: Highest sampling temperature a job may ask for.
MAX_TEMPERATURE = 2.0
_JUDGE_KEYS = ("model", "rubric", "name")
_MAX_NAME = 64


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def _choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InvalidInputError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _pointwise(rubric: dict[str, Any], what: str) -> None:
    if rubric.get("mode") == "pairwise":
        raise InvalidInputError(f"{what} is pairwise: juries and samples grade score rubrics "
                                "(drop judges/samples, or use a pointwise rubric)")


def _model(name: str, model: Any, served: list[str]) -> str | None:
    """`model` when it is one of the `served` models (None stays None), else the 422."""
    if model is None:
        return None
    if not isinstance(model, str) or model not in served:
        raise InvalidInputError(f"{name} {model!r} is not served here; served models: "
                                f"{', '.join(served)} (or null for "
                                f"{'the job' if name != 'model' else 'the engine'}'s own)")
    return model


def _juror(kit: JudgeKit, index: int, spec: Any, served: list[str], default_model: str,
           job_name: str, job_rubric: dict[str, Any]) -> dict[str, Any]:
    where = f"judges[{index}]"
    if not isinstance(spec, dict):
        raise InvalidInputError(f"{where} must be an object with {', '.join(_JUDGE_KEYS)}")
    unknown = sorted(set(spec) - set(_JUDGE_KEYS))
    if unknown:
        raise InvalidInputError(f"{where} has unknown key(s) {unknown}; a judge takes "
                                f"{', '.join(_JUDGE_KEYS)}")
    model = _model(f"{where}.model", spec.get("model"), served)
    rubric_spec = spec.get("rubric")
    if rubric_spec is None:
        rubric_name, rubric = job_name, job_rubric
    else:
        if not isinstance(rubric_spec, str | dict):
            raise InvalidInputError(f"{where}.rubric must be a rubric name, an inline rubric "
                                    "or null (the job's rubric)")
        try:
            rubric_name, rubric = kit.load_rubric(rubric_spec)
        except EvalserveError as exc:
            raise InvalidInputError(f"{where}.rubric: {exc.message}") from None
    _pointwise(rubric, f"{where}.rubric {rubric_name!r}")
    # the items' human grades are where the job's rubric says, whatever the judge's says
    rubric = {**rubric, "human_field": job_rubric.get("human_field") or "human_score"}
    if rubric["scale"] != job_rubric["scale"]:
        raise InvalidInputError(
            f"{where}.rubric {rubric_name!r} scores on {rubric['scale']} but the job's rubric "
            f"{job_name!r} on {job_rubric['scale']}: every judge must use the job rubric's "
            "score scale")
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME):
        raise InvalidInputError(f"{where}.name must be a string of 1 to {_MAX_NAME} "
                                "characters, or null (the rubric's name)")
    return {"name": name, "model": model or default_model, "rubric_name": rubric_name,
            "rubric": rubric}


def _name_jurors(jurors: list[dict[str, Any]]) -> None:
    """Unnamed judges take their rubric's name (suffixed `-<n>` when two share it); two
    judges given the same name are refused."""
    given = [j["name"] for j in jurors if j["name"] is not None]
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise InvalidInputError(f"judges: the name(s) {twice} are given to more than one "
                                "judge; give each judge its own name")
    defaults = [j["rubric_name"] for j in jurors if j["name"] is None]
    taken = set(given)
    for i, juror in enumerate(jurors):
        if juror["name"] is None:
            name = juror["rubric_name"]
            if defaults.count(name) > 1 or name in taken:
                name = f"{name}-{i + 1}"
            juror["name"] = name
            taken.add(name)


async def panel_options(
    kit: JudgeKit, engine: Any, job_name: str, job_rubric: dict[str, Any], *,
    judges: Any = None, aggregate: Any = None, min_successful: Any = None,
    samples: Any = None, reducer: Any = None, temperature: Any = None, model: Any = None,
) -> dict[str, Any]:
    """The `JobOptions` keyword arguments of these options (module doc): `model`, `judges`
    resolved (names, models, canonical rubrics), `aggregate`, `min_successful` (default all
    judges), `samples`, `reducer`, `temperature` (default `SAMPLE_TEMPERATURE` for
    samples > 1). `engine.models()` lists the models the job and its judges may name."""
    from evalserve.judge.jury import AGGREGATES, MAX_SAMPLES, REDUCERS

    out: dict[str, Any] = {}
    k = 1 if samples is None else _integer("samples", samples, 1, MAX_SAMPLES)
    served = [m.id for m in await engine.models()] if (model, judges) != (None, None) else []
    model = _model("model", model, served)
    if model is not None:
        out["model"] = model
    if judges is None:
        for name, value in (("aggregate", aggregate), ("min_successful", min_successful)):
            if value is not None:
                raise InvalidInputError(f"{name} applies to juries: give judges too")
    else:
        if not isinstance(judges, list) or not 1 <= len(judges) <= MAX_JUDGES:
            raise InvalidInputError(f"judges must be a list of 1 to {MAX_JUDGES} judges, each "
                                    f"{{{', '.join(_JUDGE_KEYS)}}}")
        _pointwise(job_rubric, f"the job's rubric {job_name!r}")
        jurors = [_juror(kit, i, spec, served, model or engine.model_id, job_name, job_rubric)
                  for i, spec in enumerate(judges)]
        _name_jurors(jurors)
        out["judges"] = jurors
        out["aggregate"] = "mean" if aggregate is None else _choice("aggregate", aggregate,
                                                                    AGGREGATES)
        out["min_successful"] = (len(jurors) if min_successful is None else
                                 _integer("min_successful", min_successful, 1, len(jurors)))
    if k == 1 and reducer is not None:
        raise InvalidInputError("reducer applies to repeated sampling: give samples >= 2")
    if temperature is not None:
        if (isinstance(temperature, bool) or not isinstance(temperature, int | float)
                or not math.isfinite(temperature) or not 0 <= temperature <= MAX_TEMPERATURE):
            raise InvalidInputError(f"temperature must be a number from 0 to "
                                    f"{MAX_TEMPERATURE}, got {temperature!r}")
        out["temperature"] = float(temperature)
    if k > 1:
        _pointwise(job_rubric, f"the job's rubric {job_name!r}")
        if temperature is not None and temperature <= 0:
            raise InvalidInputError(f"temperature must be > 0 with samples={k} (greedy "
                                    f"samples would all be the same); default "
                                    f"{SAMPLE_TEMPERATURE}")
        out["samples"] = k
        out["reducer"] = "mean" if reducer is None else _choice("reducer", reducer, REDUCERS)
        out.setdefault("temperature", SAMPLE_TEMPERATURE)
    return out

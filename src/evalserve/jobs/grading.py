"""How jobs reach the judge: load a rubric, build a judge, grade one item into a result row.

`JudgeKit` is the only place `jobs` touches `evalserve.judge`; tests may pass a stand-in with
the same methods.

A job graded by a **jury** (option `judges`) asks every judge about each item at once; the
record's score is the `aggregate` (`evalserve.judge.jury.combine`) of the judges that scored,
with each judge's result under `judges` (contract keys). The item is:

- `scored` when at least `min_successful` judges scored it;
- `error` when fewer did and some judge failed (its engine refused or broke: the reason
  says how many of how many succeeded; `POST /jobs/{id}/retry` grades it again);
- `unscored` when fewer did but every judge answered (the models gave no usable score;
  `retry?unscored=true` grades it again).

When *no* judge answered at all the item fails as one judge's would: a transient failure is
retried, then the item is an `error`. A judge whose engine is gone fails the job.

A job with **samples** k >= 2 grades each item k times at the job's `temperature`, sample i
seeded `seed + i * (retries + 1)` (its retries take the seeds in between), so the samples
differ and a rerun gives the same ones; the score is the `reducer` of the samples that scored,
`spread` their population std. No sample scored: `unscored` when every sample answered, else
the first failure is raised (retried, then `error`).

A **jury with samples** has every juror grade each item k times (juror j takes the job's
samples j*k to j*k + k - 1, so no two jurors share a seed): the juror's score is the
`reducer` of its samples (its entry under `judges` carries `samples` and `spread` too), the
item's the `aggregate` over the jurors that scored, as above; the record adds `reducer`.

Every judge asks for its **model** on each `GenerationRequest.model`: the job's `model`
(None: the engine's own), a juror its resolved one; and marks each request `background` (a
job's work, which the engine serves after direct requests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalserve.engines.base import Engine
from evalserve.errors import error_body
from evalserve.jobs.models import Job, JobOptions
from evalserve.jobs.retry import engine_gone

__all__ = ["JudgeKit", "GraderFactory", "Grader", "Juror", "Sampled", "DEFAULT_RUBRIC",
           "SAMPLE_TEMPERATURE"]

#: The rubric of seed 000 (Catalan feedback adapted to the student's course, score 0-5).
DEFAULT_RUBRIC = "teacher-eval-ca"
#: The temperature of repeated samples when the job gives none.
SAMPLE_TEMPERATURE = 0.7


@dataclass
class Juror:
    """One judge of a jury: its name, model, rubric and the judge built for it; with
    `samplers` (one judge per sample, each its own seed), it grades each item k times."""

    name: str
    model: str
    rubric_name: str
    judge: Any
    samplers: list[Any] = field(default_factory=list)


@dataclass
class Sampled:
    """k samples of one judge made one: the `reducer` of the scores that scored, with their
    `spread` (population std) and each sample's score (None: it gave none). Reads like a
    `Grade` (status, score, score_expected, feedback, reason)."""

    status: str
    score: Any
    feedback: Any
    score_expected: float | None
    score_probs: dict[Any, float] | None
    samples: list[Any]
    spread: float | None
    reason: str | None = None


@dataclass
class Grader:
    """A judge bound to its rubric, for one job; with `jurors`, a jury (module doc); with
    `samplers` (one judge per sample), repeated sampling; both: each juror samples."""

    judge: Any
    rubric: Any
    jurors: list[Juror] = field(default_factory=list)
    aggregate: str = "mean"
    min_successful: int | None = None
    samplers: list[Any] = field(default_factory=list)
    reducer: str = "mean"

    def validate_item(self, item: dict[str, Any], index: int) -> None:
        """The job rubric's checks, then every juror rubric's (an item must suit them all)."""
        self.judge.validate_item(item, index)
        for juror in self.jurors:
            juror.judge.validate_item(item, index)

    def item_id(self, item: dict[str, Any], index: int) -> str:
        return str(self.judge.item_id(item, index))

    async def grade(self, item: dict[str, Any], index: int) -> tuple[str, float | None, dict]:
        """`(status, score, record)`; the record is keyed by the rubric's names."""
        if self.jurors:
            return await self._grade_jury(item, index)
        if self.samplers:
            return await self._grade_samples(item, index)
        grade = await self.judge.grade(item, index)
        return grade.status, grade.score, grade.record(self.rubric)

    def failed_record(self, item_id: str, reason: str) -> dict[str, Any]:
        """The record of an item the engine refused (e.g. a prompt longer than MAX_MODEL_LEN)."""
        r = self.rubric
        return {r.id_field or "id": item_id, r.score_field: None, r.feedback_field: None,
                "status": "unscored", "reason": reason}

    def error_record(self, item_id: str, exc: BaseException, attempts: int) -> dict[str, Any]:
        """The record of an item whose grading failed `attempts` times (`status: "error"`):
        the reason and the error envelope (`errors.error_body`) say why."""
        body = error_body(exc)
        r = self.rubric
        return {r.id_field or "id": item_id, r.score_field: None, r.feedback_field: None,
                "status": "error", "reason": body["message"], "error": body,
                "attempts": attempts}

    # --- juries and samples ---
    def _record(self, item: dict[str, Any], index: int, status: str, score: Any,
                feedback: Any) -> dict[str, Any]:
        from evalserve.judge.grade import human_score

        r = self.rubric
        out = {r.id_field or "id": self.item_id(item, index), r.score_field: score,
               r.feedback_field: feedback, "status": status}
        human = human_score(item, r, f"items[{index}]")
        if human is not None:
            out["human_score"] = human
        return out

    async def _sample(self, samplers: list[Any], item: dict[str, Any], index: int) -> Sampled:
        """Grade the item once per sampler; no sample scored and some failed: the first
        failure is raised (retried by the runner, then `error`)."""
        from evalserve.judge.jury import combine, spread

        outcomes = await _gather([s.grade(item, index) for s in samplers])
        failures = [o for o in outcomes if isinstance(o, Exception)]
        grades = [o for o in outcomes if not isinstance(o, Exception) and o.status == "scored"]
        if not grades and failures:
            raise failures[0]
        given = [g.score for g in grades]
        score = combine(given, self.reducer)
        entries = [{"score": g.score, "feedback": g.feedback} for g in grades]
        expected = [g.score_expected for g in grades if g.score_expected is not None]
        probs = [g.score_probs for g in grades if g.score_probs is not None]
        reason = None
        if not grades:
            first = next(o for o in outcomes if not isinstance(o, Exception))
            reason = f"none of the {len(outcomes)} samples gave a usable score: {first.reason}"
        return Sampled(
            status="scored" if grades else "unscored", score=score,
            feedback=_closest(entries, score),
            score_expected=sum(expected) / len(expected) if expected else None,
            score_probs={k: sum(p.get(k, 0.0) for p in probs) / len(probs)
                         for k in probs[0]} if probs else None,
            samples=[None if isinstance(o, Exception) or o.status != "scored" else o.score
                     for o in outcomes],
            spread=spread(given), reason=reason)

    async def _juror(self, juror: Juror, item: dict[str, Any], index: int) -> Any:
        if juror.samplers:
            return await self._sample(juror.samplers, item, index)
        return await juror.judge.grade(item, index)

    async def _grade_jury(self, item: dict[str, Any], index: int) -> tuple[str, Any, dict]:
        from evalserve.judge.jury import combine

        outcomes = await _gather([self._juror(j, item, index) for j in self.jurors])
        entries, scored, failures = [], [], []
        for juror, outcome in zip(self.jurors, outcomes, strict=True):
            entry: dict[str, Any] = {"judge": juror.name, "model": juror.model,
                                     "rubric": juror.rubric_name}
            if isinstance(outcome, Exception):
                failures.append(outcome)
                entry.update(status="error", score=None, score_expected=None, feedback=None,
                             reason=error_body(outcome)["message"])
                if juror.samplers:
                    entry.update(samples=[None] * len(juror.samplers), spread=None)
            else:
                entry.update(status=outcome.status, score=outcome.score,
                             score_expected=outcome.score_expected, feedback=outcome.feedback)
                if outcome.reason is not None:
                    entry["reason"] = outcome.reason
                if isinstance(outcome, Sampled):
                    entry.update(samples=outcome.samples, spread=outcome.spread)
                if outcome.status == "scored":
                    scored.append(entry)
            entries.append(entry)
        if len(failures) == len(self.jurors):
            raise failures[0]
        need = self.min_successful or len(self.jurors)
        scores = [e["score"] for e in scored]
        if len(scored) >= need:
            status, score = "scored", combine(scores, self.aggregate)
        else:
            status, score = ("error" if failures else "unscored"), None
        record = self._record(item, index, status, score, _closest(scored, score))
        expected = [e["score_expected"] for e in scored if e["score_expected"] is not None]
        if status == "scored" and expected:
            record["score_expected"] = combine(
                expected, "median" if self.aggregate == "median" else "mean")
        if status != "scored":
            record["reason"] = (f"{len(scored)} of {len(self.jurors)} judges scored the item; "
                                f"the job needs min_successful={need}")
            if failures:
                record["error"] = error_body(failures[0])
        record.update(judges=entries, aggregate=self.aggregate, judges_successful=len(scored))
        if any(j.samplers for j in self.jurors):
            record["reducer"] = self.reducer
        return status, score, record

    async def _grade_samples(self, item: dict[str, Any], index: int) -> tuple[str, Any, dict]:
        sampled = await self._sample(self.samplers, item, index)
        record = self._record(item, index, sampled.status, sampled.score, sampled.feedback)
        if sampled.score_expected is not None:
            record["score_expected"] = sampled.score_expected
        if sampled.score_probs is not None:
            record["score_probs"] = sampled.score_probs
        if sampled.reason is not None:
            record["reason"] = sampled.reason
        record.update(samples=sampled.samples, reducer=self.reducer, spread=sampled.spread)
        return sampled.status, sampled.score, record


async def _gather(calls: list[Any]) -> list[Any]:
    """Every call's result or exception; a gone engine (or a cancellation) is raised."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and (
                not isinstance(outcome, Exception) or engine_gone(outcome)):
            raise outcome
    return outcomes


def _closest(entries: list[dict[str, Any]], score: Any) -> Any:
    """The feedback of the first entry whose score is closest to `score` (None: no entry)."""
    if not entries or score is None:
        return None
    return min(entries, key=lambda e: abs(e["score"] - score))["feedback"]


#: Builds the grader of a job whose `options.kind` is not "evaluate": `(engine, job) -> grader`.
#: The grader answers `validate_item`, `item_id`, `grade`, `failed_record` and `error_record`
#: as `Grader` does.
GraderFactory = Callable[[Engine, Job], Any]


class JudgeKit:
    """Rubric loading and judge construction, from `evalserve.judge`; `graders`: the factories
    of other job kinds, registered by the component that defines the kind."""

    def __init__(self, rubrics_dir: Path | None = None, *, max_tokens: int | None = None,
                 temperature: float = 0.0, retries: int = 2, seed: int | None = None) -> None:
        self.rubrics_dir = rubrics_dir
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.retries = retries
        self.seed = seed
        self.graders: dict[str, GraderFactory] = {}

    def grader_for(self, engine: Engine, job: Job) -> Any:
        """The grader of `job`: its kind's registered factory, else the judge of its rubric."""
        factory = self.graders.get(job.options.kind)
        if factory is not None:
            return factory(engine, job)
        return self.grader(engine, job.rubric, job.options)

    @classmethod
    def from_settings(cls, settings: Any) -> JudgeKit:
        """Rubrics from `RUBRICS_DIR`; an explicitly set `MAX_NEW_TOKENS` caps the judge's
        output budget (else each rubric's own)."""
        explicit = "max_new_tokens" in settings.model_fields_set
        return cls(settings.rubrics_dir,
                   max_tokens=settings.max_new_tokens if explicit else None)

    def load_rubric(self, spec: str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """`(name, canonical dict)` of the rubric a request names or inlines; `NotFoundError` or
        `InvalidInputError` saying what is wrong."""
        from evalserve.judge.rubric import load_rubric

        rubric = load_rubric(spec if spec is not None else DEFAULT_RUBRIC, self.rubrics_dir)
        return rubric.name, rubric.model_dump(mode="json")

    def sample_seeds(self, k: int, first: int = 0) -> list[int]:
        """The seeds of k samples (the `first`-th sample of the job on): apart by
        `retries + 1`, so no retry reuses a sample's."""
        base = self.seed or 0
        return [base + i * (self.retries + 1) for i in range(first, first + k)]

    def grader(self, engine: Engine, rubric: dict[str, Any],
               options: JobOptions | None = None) -> Grader:
        """A judge for a stored rubric dict on the job's `model`, with the jury or samples of
        `options` (the job's, as `evalserve.jobs.panel.panel_options` resolved them): each
        juror on its own model; with samples, juror j takes samples j*k to j*k + k - 1."""
        from evalserve.judge.rubric import Rubric

        options = options or JobOptions()
        model = Rubric.model_validate(rubric)
        temperature = self.temperature if options.temperature is None else options.temperature
        k = options.samples
        grader = Grader(self._judge(engine, model, temperature, self.seed, options.model),
                        model, aggregate=options.aggregate,
                        min_successful=options.min_successful, reducer=options.reducer)
        for j, spec in enumerate(options.judges or []):
            juror_rubric = Rubric.model_validate(spec["rubric"])
            juror = Juror(spec["name"], spec["model"], spec["rubric_name"],
                          self._judge(engine, juror_rubric, temperature, self.seed,
                                      spec["model"]))
            if k > 1:
                juror.samplers = [self._judge(engine, juror_rubric, temperature, seed,
                                              spec["model"])
                                  for seed in self.sample_seeds(k, j * k)]
            grader.jurors.append(juror)
        if k > 1 and not grader.jurors:
            grader.samplers = [self._judge(engine, model, temperature, seed, options.model)
                               for seed in self.sample_seeds(k)]
        return grader

    def _judge(self, engine: Engine, rubric: Any, temperature: float, seed: int | None,
               model: str | None) -> Any:
        from evalserve.judge.judge import Judge

        return Judge(engine, rubric, temperature=temperature, max_tokens=self.max_tokens,
                     retries=self.retries, seed=seed, model=model, background=True)

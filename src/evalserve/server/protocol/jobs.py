"""Wire models of `POST /evaluate` (seed 000) and the `/jobs` routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalserve.jobs.models import Job
from evalserve.jobs.service import Submission
from evalserve.tracking.jobs import track_option

__all__ = ["EvaluateRequest", "JudgeSpec", "EvaluateResponse", "JobCounts", "JobTimings", "JobView",
           "JobList", "JobAgreement"]


class JudgeSpec(BaseModel):
    """One judge of a jury."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None, description="The judge's model: one this server serves (`GET /v1/models`; "
                          "with a router, any routed model); null for the job's `model`")
    rubric: str | dict[str, Any] | None = Field(
        None, description="A rubric name or an inline rubric on the job rubric's score scale; "
                          "null for the job's rubric")
    name: str | None = Field(None, min_length=1, max_length=64,
                             description="The judge's name in results (default its rubric's)")


class EvaluateRequest(BaseModel):
    """Seed 000's body (`{"items": [...]}`) plus the rubric and options."""

    model_config = ConfigDict(extra="forbid")

    items: list[Any] = Field(
        description="Items to grade, each an object with the rubric's fields "
                    "(teacher-eval-ca: id_alumno, curso, consigna, respuesta)")
    rubric: str | dict[str, Any] | None = Field(
        None, description="A rubric name or an inline rubric; default `teacher-eval-ca`")
    metrics: list[str] = Field(default_factory=list,
                               description="Metrics to compute per item (stored with the job)")
    track: dict[str, Any] | None = Field(
        None, description="Experiment-tracking options (stored with the job)")
    model: str | None = Field(
        None, description="The model that judges the job: one this server serves "
                          "(`GET /v1/models`; with a router, any routed model); default the "
                          "served one. A 422 lists the available models")
    judges: list[JudgeSpec] | None = Field(
        None, min_length=1, max_length=10,
        description="A jury: every judge grades every item; the item's score is their "
                    "`aggregate` (with `samples` >= 2, each judge's score is the `reducer` "
                    "of its samples)")
    aggregate: Literal["mean", "median", "majority"] | None = Field(
        None, description="How the judges' scores become one (with `judges`; default mean)")
    min_successful: int | None = Field(
        None, ge=1, description="Judges that must score an item (with `judges`; default all)")
    samples: int | None = Field(
        None, ge=1, le=20, description="Grade each item this many times (default 1)")
    reducer: Literal["mean", "median", "mode"] | None = Field(
        None, description="How the samples become one score (with `samples` >= 2; default "
                          "mean)")
    temperature: float | None = Field(
        None, ge=0, le=2, description="The judge's temperature; > 0 with `samples` >= 2 "
                                      "(default 0.7 then)")

    @field_validator("track")
    @classmethod
    def _check_track(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """`{"experiment", "run_name", "tags"}`: logged to MLflow when the job completes."""
        return None if value is None else track_option(value)


class EvaluateResponse(BaseModel):
    """Seed 000's answer: the job id and where to stream its results."""

    job_id: str
    total_items: int
    estimated_time_seconds: int
    status: str
    stream_url: str

    @classmethod
    def of(cls, submission: Submission) -> EvaluateResponse:
        job = submission.job
        return cls(job_id=job.id, total_items=job.total,
                   estimated_time_seconds=submission.estimated_time_seconds,
                   status=job.status.value, stream_url=f"/stream/{job.id}")


class JobCounts(BaseModel):
    """Items in all (`total`), with a result (`completed` = `scored + unscored + errors`)."""

    total: int
    completed: int
    scored: int
    unscored: int
    errors: int = Field(description="Items whose grading failed after its retries "
                                    "(`POST /jobs/{id}/retry` grades them again)")
    percentage: float


class JobTimings(BaseModel):
    created_at: str
    started_at: str | None
    finished_at: str | None
    elapsed_seconds: float


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class JobView(BaseModel):
    """`GET /jobs/{id}`: status, counts, timings, rubric and mean score."""

    job_id: str
    status: str
    rubric: str
    counts: JobCounts
    timings: JobTimings
    mean_score: float | None = Field(description="Mean over scored items")
    metrics: list[str]
    track: dict[str, Any] | None
    error: dict[str, Any] | None
    stream_url: str
    results_url: str
    report: dict[str, Any] | None = Field(
        None, description="The job's report once it completed (null before, and in "
                          "`GET /jobs` listings): `agreement` with the human grades, "
                          "`pairwise`, `jury`, `samples`, the sections that apply; the same "
                          "as the `complete` event's `report`")
    agreement_url: str

    @classmethod
    def of(cls, job: Job, now: float, report: dict[str, Any] | None = None) -> JobView:
        pct = round(100.0 * job.completed / job.total, 1) if job.total else 100.0
        return cls(
            job_id=job.id, status=job.status.value, rubric=job.rubric_name,
            counts=JobCounts(total=job.total, completed=job.completed, scored=job.scored,
                             unscored=job.unscored, errors=job.errors, percentage=pct),
            timings=JobTimings(created_at=_iso(job.created_at) or "",
                               started_at=_iso(job.started_at),
                               finished_at=_iso(job.finished_at),
                               elapsed_seconds=round(job.elapsed(now), 3)),
            mean_score=job.mean_score, metrics=job.options.metrics, track=job.options.track,
            error=job.error, stream_url=f"/stream/{job.id}",
            results_url=f"/jobs/{job.id}/results", report=report,
            agreement_url=f"/jobs/{job.id}/agreement",
        )


class JobAgreement(BaseModel):
    """`GET /jobs/{id}/agreement`: the judge's agreement with the items' human grades."""

    job_id: str
    status: str
    score: dict[str, Any] = Field(
        description="The judge's score against the human grades: QWK, Cohen's kappa "
                    "(unweighted, linear), Krippendorff's alpha, Spearman, Pearson, exact and "
                    "adjacent agreement, MAE, the confusion matrix, bootstrap intervals and the "
                    "largest disagreements (`{\"error\": message}` when the grades do not "
                    "fit the rubric's scale)")
    score_expected: dict[str, Any] | None = Field(
        None, description="The same for `score_expected` (the probability-weighted score), "
                          "when the engine gave logprobs")

    @classmethod
    def of(cls, job: Job, section: dict[str, Any]) -> JobAgreement:
        return cls(job_id=job.id, status=job.status.value, score=section["score"],
                   score_expected=section.get("score_expected"))


class JobList(BaseModel):
    """`GET /jobs`: newest first."""

    jobs: list[JobView]

"""What a job is: its status, options, counters and the events it emits."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobStatus", "JobOptions", "Job", "JobEvent", "ResultRow", "EventType"]


class JobStatus(enum.StrEnum):
    """Lifecycle of a job: queued -> running -> completed | cancelled | failed."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.CANCELLED, JobStatus.FAILED)


class EventType:
    """SSE event names (seed 000 defines `batch_complete` and `complete`)."""

    BATCH = "batch_complete"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass
class JobOptions:
    """Request options other components read (metrics to compute, tracking settings, the
    jury and repeated sampling), stored with the job: a resumed job grades with the same ones.

    `judges`: None (one judge: the job's rubric on the served model) or the jury, resolved at
    submission, each `{"name", "model", "rubric_name", "rubric": <canonical rubric dict>}` in
    the job's order; `aggregate` (mean | median | majority) and `min_successful` (None: all
    judges) apply to it. `samples` >= 2 grades each item that many times at `temperature`
    (None: the judge's default, 0.0) with distinct seeds; `reducer` (mean | median | mode)
    makes the samples one score. `model`: the model that judges the job (one of the engine's
    `models()`, a routed model with `UPSTREAMS_FILE`; None: the engine's own). `traceparent`:
    the W3C trace context of the submitting request, so every replica that grades the job adds
    its spans to that request's trace. `kind`: what grades the items, "evaluate" (the judge
    above) or another kind registered with `JudgeKit.graders` (e.g. "batch": OpenAI Batch API
    lines answered as on `/v1`); `endpoint`: the route such a kind answers, if any.
    """

    metrics: list[str] = field(default_factory=list)
    track: dict[str, Any] | None = None
    judges: list[dict[str, Any]] | None = None
    aggregate: str = "mean"
    min_successful: int | None = None
    samples: int = 1
    reducer: str = "mean"
    temperature: float | None = None
    model: str | None = None
    traceparent: str | None = None
    kind: str = "evaluate"
    endpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        judges = None if self.judges is None else [dict(j) for j in self.judges]
        return {"metrics": list(self.metrics), "track": self.track, "judges": judges,
                "aggregate": self.aggregate, "min_successful": self.min_successful,
                "samples": self.samples, "reducer": self.reducer,
                "temperature": self.temperature, "model": self.model,
                "traceparent": self.traceparent, "kind": self.kind,
                "endpoint": self.endpoint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobOptions:
        """The options of a stored dict; keys it lacks (a job stored before they existed)
        take their defaults."""
        judges = data.get("judges")
        return cls(metrics=list(data.get("metrics") or []), track=data.get("track"),
                   judges=None if judges is None else [dict(j) for j in judges],
                   aggregate=data.get("aggregate") or "mean",
                   min_successful=data.get("min_successful"),
                   samples=int(data.get("samples") or 1),
                   reducer=data.get("reducer") or "mean",
                   temperature=data.get("temperature"), model=data.get("model"),
                   traceparent=data.get("traceparent"),
                   kind=data.get("kind") or "evaluate", endpoint=data.get("endpoint"))


@dataclass
class Job:
    """One evaluation job as stored. Counters cover results stored so far."""

    id: str
    status: JobStatus
    rubric_name: str
    rubric: dict[str, Any]
    """The rubric as it was when the job was created (a resumed job grades with the same one)."""
    total: int
    options: JobOptions = field(default_factory=JobOptions)
    owner: str | None = None
    """Key id of the caller who submitted it (`server/auth.py`); None in single-user mode."""
    attempts: int = 0
    """How many times the job was started (a resume counts; a retry starts from 0)."""
    completed: int = 0
    """Items with a stored result: `scored + unscored + errors`."""
    scored: int = 0
    unscored: int = 0
    errors: int = 0
    """Items whose grading failed after its retries (stored with `status: "error"`)."""
    score_sum: float = 0.0
    batches: int = 0
    """`batch_complete` events emitted so far."""
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    """The job's report once computed at completion (`jobs/reports.py`); the finish hooks
    read it rather than computing it again. Stored apart (`JobStore.get_report`)."""

    @property
    def mean_score(self) -> float | None:
        """Mean score over scored items (None before the first one)."""
        return round(self.score_sum / self.scored, 4) if self.scored else None

    def elapsed(self, now: float) -> float:
        """Seconds from the first start to the finish (or to `now` while running)."""
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.started_at)


@dataclass
class JobEvent:
    """One stored SSE event; `id` increases per job from 1. `final` ends every stream."""

    job_id: str
    id: int
    type: str
    data: dict[str, Any]
    final: bool = False


@dataclass
class ResultRow:
    """One graded item as stored: `record` is `Grade.record(rubric)` plus item-hook fields.
    `status` is `scored`, `unscored` (the judge gave no usable score) or `error` (grading
    failed; the record says why)."""

    job_id: str
    idx: int
    item_id: str
    status: str
    score: float | None
    record: dict[str, Any]

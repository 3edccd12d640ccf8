"""The spans of a job as the runner grades it: `job` → `item` → `engine.generate` (→ the
upstream's HTTP client span, from the httpx instrumentation, for the `openai` engine).

- `job` (kind CONSUMER): one per run of the job on a replica, child of the submitting
  request's span (`JobOptions.traceparent`), so a job resumed by another replica or after a
  restart goes on in the same trace. Attributes: `evalserve.job.id`, `.rubric`, `.total`;
  at the end `.status` (`running` when this replica stopped before the end and handed the job
  back) and `.completed` (items stored so far); a FAILED job is an ERROR span with the job's
  error message.
- `item`: one per item graded, retries included. `evalserve.job.id`, `evalserve.item.index`,
  `evalserve.item.id`; at the end `evalserve.item.status` and `evalserve.item.score` (an
  `error` item is an ERROR span with its reason).
- `engine.generate`: one per engine call, with the GenAI semantic-convention attributes
  (`gen_ai.request.model`, `gen_ai.request.max_tokens`, `gen_ai.request.temperature`,
  `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
  `gen_ai.response.finish_reasons`); a failed call records its exception.

Every function takes the runner's tracer; with None (tracing off) each returns what it was
given, untouched: no span, no wrapper. Under a job whose trace is not sampled, no `item` or
`engine.generate` span is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import (
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    StreamDelta,
)
from evalserve.jobs.models import Job, JobStatus, ResultRow
from evalserve.tracing import span

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from evalserve.jobs.execution import Execution
    from evalserve.jobs.store import PendingItem

__all__ = ["TracedEngine", "traced_engine", "traced_job", "traced_item"]


def traced_job(tracer: Tracer | None, ex: Execution,
               run: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None]:
    """`run` (the job's run on this replica) inside a `job` span."""
    return run if tracer is None else _job(tracer, ex, run)


async def _job(tracer: Tracer, ex: Execution, run: Coroutine[Any, Any, None]) -> None:
    from opentelemetry.trace import SpanKind, StatusCode

    job = ex.job
    with span(tracer, "job", traceparent=job.options.traceparent, kind=SpanKind.CONSUMER,
              attributes={"evalserve.job.id": job.id, "evalserve.job.rubric": job.rubric_name,
                          "evalserve.job.total": job.total}) as current:
        assert current is not None
        try:
            await run
        finally:
            current.set_attributes({"evalserve.job.status": job.status.value,
                                    "evalserve.job.completed": job.completed})
            if job.status is JobStatus.FAILED:
                current.set_status(StatusCode.ERROR, (job.error or {}).get("message"))


def traced_item(tracer: Tracer | None, job: Job, pending: PendingItem,
                run: Coroutine[Any, Any, ResultRow | None]) -> Coroutine[Any, Any, Any]:
    """`run` (grading and storing one item; its stored row, or None when the job stopped or
    failed meanwhile) inside an `item` span."""
    return run if tracer is None else _item(tracer, job, pending, run)


async def _item(tracer: Tracer, job: Job, pending: PendingItem,
                run: Coroutine[Any, Any, ResultRow | None]) -> ResultRow | None:
    from opentelemetry.trace import StatusCode

    if not _recording():  # the job's trace is not sampled: neither are its items
        return await run
    with span(tracer, "item", attributes={"evalserve.job.id": job.id,
                                          "evalserve.item.index": pending.idx,
                                          "evalserve.item.id": pending.item_id}) as current:
        assert current is not None
        row = await run
        if row is not None:
            outcome: dict[str, Any] = {"evalserve.item.status": row.status}
            if row.score is not None:
                outcome["evalserve.item.score"] = row.score
            current.set_attributes(outcome)
            if row.status == "error":
                current.set_status(StatusCode.ERROR, str(row.record.get("reason", "")))
        return row


def _recording() -> bool:
    """Whether the current span is recorded. Under a parent-based sampler (the default) the
    children of an unsampled span are never sampled, so the runner does not make them: an
    unsampled job costs one span, not two per item."""
    from opentelemetry.trace import get_current_span

    return get_current_span().is_recording()


def traced_engine(tracer: Tracer | None, engine: Engine) -> Engine:
    """`engine` with an `engine.generate` span around every generation."""
    return engine if tracer is None else TracedEngine(engine, tracer)


class TracedEngine(Engine):
    """Delegates the `Engine` seam to `inner`; `generate` (and so `generate_many`) runs in an
    `engine.generate` span. `start` and `close` stay the base's no-ops: the engine's owner
    starts and closes `inner`."""

    def __init__(self, inner: Engine, tracer: Tracer) -> None:
        self.inner = inner
        self.tracer = tracer

    @property  # type: ignore[override]
    def capacity(self) -> int:
        return self.inner.capacity

    @property  # type: ignore[override]
    def supports_logprobs(self) -> bool:
        return self.inner.supports_logprobs

    @property  # type: ignore[override]
    def supports_constraints(self) -> bool:
        return self.inner.supports_constraints

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def queue_depth(self) -> int:
        return self.inner.queue_depth

    @property
    def running(self) -> int | None:
        return self.inner.running

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        if not _recording():
            return await self.inner.generate(request)
        attributes = {
            "gen_ai.operation.name": "chat" if request.messages is not None else "text_completion",
            "gen_ai.request.model": request.model or self.inner.model_id,
            "gen_ai.request.max_tokens": request.max_tokens,
            "gen_ai.request.temperature": request.temperature,
            "evalserve.request_id": request.request_id,
        }
        with span(self.tracer, "engine.generate", attributes=attributes) as current:
            assert current is not None
            result = await self.inner.generate(request)
            current.set_attributes({
                "gen_ai.usage.input_tokens": result.prompt_tokens,
                "gen_ai.usage.output_tokens": result.completion_tokens,
                "gen_ai.response.finish_reasons": [o.finish_reason for o in result.outputs],
            })
            return result

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        return self.inner.stream(request)

    async def abort(self, request_id: str) -> None:
        await self.inner.abort(request_id)

    async def health(self) -> EngineHealth:
        return await self.inner.health()

    async def models(self) -> list[ModelInfo]:
        return await self.inner.models()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

"""The runner's spans record failures: a failed engine call is an ERROR `engine.generate`
span with its exception, an item stored as `error` is an ERROR `item` span with its reason,
and a failed job is an ERROR `job` span with the job's error."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from evalserve.engines.base import Engine, GenerationRequest
from evalserve.errors import EngineUnavailableError, UpstreamError
from evalserve.jobs.config import RunnerConfig
from evalserve.jobs.grading import JudgeKit
from evalserve.jobs.service import JobService
from evalserve.jobs.sqlite import SQLiteJobStore
from evalserve.settings import Settings
from evalserve.tracing import context_of, setup_tracing, tracer_of
from tests.fakes import ScriptedEngine, request_text
from tests.jobs.helpers import answer, item
from tests.tracing.apps import Spans
from tests.waiting import wait_until


async def _instant(seconds: float) -> None:
    return None


@contextlib.asynccontextmanager
async def traced_service(tmp_path: Path, settings: Settings, engine: Engine,
                         exporter: InMemorySpanExporter) -> AsyncIterator[JobService]:
    """A started job service whose runner traces into `exporter` (one retry, no backoff)."""
    tracer = tracer_of(setup_tracing(settings, exporter=exporter))

    async def ready() -> Engine:
        return engine

    service = JobService(SQLiteJobStore(tmp_path / "jobs.db"), JudgeKit(), engine, ready,
                         RunnerConfig(item_retries=1, item_retry_backoff_seconds=0.0),
                         runner_options={"tracer": tracer, "sleep": _instant})
    await service.start()
    try:
        yield service
    finally:
        await service.close()


async def _finished(service: JobService, job_id: str) -> bool:
    return (await service.get(job_id)).status.finished


async def test_failed_calls_and_error_items_are_error_spans(tmp_path: Path,
                                                            settings: Settings) -> None:
    def script(request: GenerationRequest) -> str:
        if "(1)" in request_text(request):
            raise UpstreamError("upstream 503: overloaded")
        return answer(5)

    exporter = InMemorySpanExporter()
    async with traced_service(tmp_path, settings, ScriptedEngine(script), exporter) as service:
        job_id = (await service.submit([item(0), item(1)])).job.id
        await wait_until(lambda: _finished(service, job_id), what="the job to end")
        assert (await service.get(job_id)).options.traceparent is None  # submitted untraced
    spans = Spans(exporter.get_finished_spans())

    job = spans.one("job")
    assert job.parent is None  # no request around the submission: the job starts the trace
    assert job.status.status_code is StatusCode.UNSET
    assert job.attributes["evalserve.job.status"] == "completed"
    items = {s.attributes["evalserve.item.index"]: s for s in spans.children(job)}
    good, bad = items[0], items[1]
    assert good.status.status_code is StatusCode.UNSET
    assert bad.attributes["evalserve.item.status"] == "error"
    assert "evalserve.item.score" not in bad.attributes
    assert bad.status.status_code is StatusCode.ERROR
    assert "overloaded" in bad.status.description
    calls = spans.children(bad)
    assert len(calls) == 2  # the first try and its one retry
    for call in calls:
        assert call.name == "engine.generate"
        assert call.status.status_code is StatusCode.ERROR
        (event,) = call.events
        assert event.name == "exception"
        assert event.attributes["exception.type"].endswith("UpstreamError")
    (ok,) = spans.children(good)
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes["gen_ai.request.model"] == "scripted"


async def test_a_failed_job_is_an_error_span(tmp_path: Path, settings: Settings) -> None:
    def gone(request: GenerationRequest) -> str:
        raise EngineUnavailableError("the model is gone")

    exporter = InMemorySpanExporter()
    async with traced_service(tmp_path, settings, ScriptedEngine(gone), exporter) as service:
        job_id = (await service.submit([item(0)])).job.id
        await wait_until(lambda: _finished(service, job_id), what="the job to fail")
        stored = await service.get(job_id)
    assert stored.status.value == "failed"
    job = Spans(exporter.get_finished_spans()).one("job")
    assert job.attributes["evalserve.job.status"] == "failed"
    assert job.status.status_code is StatusCode.ERROR
    assert job.status.description == stored.error["message"]
    assert "gone" in job.status.description


async def test_a_job_of_an_unsampled_request_records_no_span(tmp_path: Path,
                                                              settings: Settings) -> None:
    """A caller's `traceparent` with the sampled flag off: the job is graded, its trace
    context is kept, and nothing is recorded (the default sampler follows the parent)."""
    from opentelemetry import context

    unsampled = f"00-{'ab' * 16}-{'cd' * 8}-00"
    exporter = InMemorySpanExporter()
    engine = ScriptedEngine(lambda r: answer(4))
    async with traced_service(tmp_path, settings, engine, exporter) as service:
        token = context.attach(context_of(unsampled))
        try:
            job_id = (await service.submit([item(0), item(1)])).job.id
        finally:
            context.detach(token)
        await wait_until(lambda: _finished(service, job_id), what="the job to end")
        stored = await service.get(job_id)
    assert stored.status.value == "completed" and len(engine.requests) == 2
    assert stored.options.traceparent == unsampled
    assert exporter.get_finished_spans() == ()

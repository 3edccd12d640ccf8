"""`evalserve.tracing`: the provider only with an endpoint (resource, exporter, sampler), the
W3C `traceparent` helpers, and a server with tracing off: no provider, no spans, no header."""

from __future__ import annotations

import os
import socket
import threading

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from evalserve.jobs.spans import traced_engine, traced_item, traced_job
from evalserve.settings import Settings
from evalserve.tracing import (
    context_of,
    current_traceparent,
    replica_name,
    setup_tracing,
    span,
    tracer_of,
    traces_endpoint,
)
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import answer, item
from tests.server.openai_app import make_settings
from tests.tracing.apps import job_done, traced_app, traceparent_ids
from tests.tracing.upstream import FakeOpenAI
from tests.waiting import wait_until


def otel_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("Otel")]


def test_no_endpoint_no_provider(settings: Settings) -> None:
    assert settings.otel_exporter_otlp_endpoint is None
    assert setup_tracing(settings) is None
    assert tracer_of(None) is None


def test_an_endpoint_gives_a_batch_otlp_provider_naming_the_replica(settings: Settings) -> None:
    s = make_settings(settings, otel_exporter_otlp_endpoint="http://collector:4318/",
                      otel_service_name="grading")
    provider = setup_tracing(s)
    assert provider is not None
    try:
        attributes = provider.resource.attributes
        assert attributes["service.name"] == "grading"
        assert attributes["service.instance.id"] == f"{socket.gethostname()}-{os.getpid()}"
        (processor,) = provider._active_span_processor._span_processors
        assert isinstance(processor, BatchSpanProcessor)
        exporter = processor._batch_processor._exporter
        assert isinstance(exporter, OTLPSpanExporter)
        assert exporter._endpoint == "http://collector:4318/v1/traces"
    finally:
        provider.shutdown()
    named = setup_tracing(make_settings(s, replica_id="eu-1"))
    assert named is not None
    assert named.resource.attributes["service.instance.id"] == "eu-1"
    named.shutdown()


def test_traces_endpoint_and_replica_name() -> None:
    assert traces_endpoint("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_endpoint("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
    assert replica_name("a") == "a"
    assert replica_name(None) == f"{socket.gethostname()}-{os.getpid()}"


def test_traceparent_round_trip_and_malformed_values(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    tracer = tracer_of(setup_tracing(settings, exporter=exporter))
    assert current_traceparent() is None  # no span current
    with span(tracer, "request", kind=SpanKind.SERVER) as outer:
        assert outer is not None
        stored = current_traceparent()
    assert stored is not None
    assert traceparent_ids(stored) == (outer.context.trace_id, outer.context.span_id)
    with span(tracer, "later", traceparent=stored) as child:
        assert child is not None
    assert child.parent is not None and child.parent.is_remote
    assert (child.context.trace_id, child.parent.span_id) == traceparent_ids(stored)
    with span(tracer, "fresh", traceparent="00-not-a-trace-01") as fresh:
        assert fresh is not None
    assert fresh.parent is None and fresh.context.trace_id != outer.context.trace_id
    assert context_of(None) is None
    with span(None, "off") as nothing:
        assert nothing is None


def test_sampling_drops_root_client_spans_only(settings: Settings, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    exporter = InMemorySpanExporter()
    tracer = tracer_of(setup_tracing(settings, exporter=exporter))
    with span(tracer, "probe", kind=SpanKind.CLIENT):
        pass
    with span(tracer, "request", kind=SpanKind.SERVER), span(tracer, "call",
                                                             kind=SpanKind.CLIENT):
        pass
    with span(tracer, "background"):
        pass
    assert sorted(s.name for s in exporter.get_finished_spans()) == [
        "background", "call", "request"]


def test_otel_traces_sampler_from_the_environment_wins(settings: Settings,
                                                        monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    tracer = tracer_of(setup_tracing(settings, exporter=exporter))
    with span(tracer, "request", kind=SpanKind.SERVER):
        pass
    assert exporter.get_finished_spans() == ()


async def test_off_the_runner_adds_no_wrapper() -> None:
    engine = ScriptedEngine(lambda r: "x")
    assert traced_engine(None, engine) is engine

    async def run() -> None:
        return None

    job_run, item_run = run(), run()
    assert traced_job(None, None, job_run) is job_run  # type: ignore[arg-type]
    assert traced_item(None, None, None, item_run) is item_run  # type: ignore[arg-type]
    await job_run
    await item_run


async def test_tracing_off_no_provider_no_spans_no_header(settings: Settings) -> None:
    threads = otel_threads()
    with FakeOpenAI(answer(2)) as upstream:
        s = make_settings(settings, engine="openai", vllm_endpoint=upstream.url,
                          upstream_retries=0)
        async with traced_app(s, None) as (app, client):
            assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
            assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
            jobs = app.state.evalserve.components.jobs
            assert jobs.runner.tracer is None
            r = await client.post("/evaluate", json={"items": [item(0), item(1)]})
            assert r.status_code == 200, r.text
            job_id = r.json()["job_id"]
            await wait_until(lambda: job_done(app, job_id), what="the job to complete")
            assert (await jobs.get(job_id)).options.traceparent is None
    assert upstream.chats == [None, None]  # graded, and no traceparent sent upstream
    assert otel_threads() == threads  # no exporter thread started
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # none global


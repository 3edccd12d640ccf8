"""OpenTelemetry tracing: the tracer provider of a server, and the W3C trace context a job
keeps so that every replica grading it adds its spans to the submitting request's trace.

`setup_tracing(settings)` builds a `TracerProvider` only when `OTEL_EXPORTER_OTLP_ENDPOINT` is
set: its resource names the service (`OTEL_SERVICE_NAME`) and the replica
(`service.instance.id`: `REPLICA_ID`, else `<hostname>-<pid>`), and a `BatchSpanProcessor`
sends spans over OTLP/HTTP to `<endpoint>/v1/traces` from a background thread. Unset, it
returns None: no provider, no thread, no span anywhere (every helper here takes the tracer, and
a None tracer costs one `if`). The provider is the caller's (the server passes it to its
instrumentations and its job runner), not the process-global one, so several apps in one
process (tests) each keep their own; `provider.shutdown()` flushes what is queued.

Sampling (unless `OTEL_TRACES_SAMPLER` chooses another, as the SDK reads it): a span whose
parent is sampled is sampled; a root span is sampled unless it is a CLIENT span, i.e. an
upstream call outside any request or job (the `openai` engine's health probes behind
`/health`, which is itself not traced, and its model discovery at start) is not traced.

This module is at the bottom of the layers: it imports nothing from evalserve, and
OpenTelemetry only when a helper is called.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, SpanKind, Tracer

__all__ = ["TracingSettings", "replica_name", "setup_tracing", "tracer_of", "traces_endpoint",
           "current_traceparent", "context_of", "span", "INSTRUMENTATION"]

#: The instrumentation scope name of evalserve's own spans.
INSTRUMENTATION = "evalserve"


class TracingSettings(Protocol):
    """The settings tracing reads (`evalserve.settings.Settings` has them)."""

    replica_id: str | None
    otel_exporter_otlp_endpoint: str | None
    otel_service_name: str


def replica_name(replica_id: str | None = None) -> str:
    """This replica's name in traces and metrics: `replica_id` (`REPLICA_ID`), else
    `<hostname>-<pid>` (unique among processes on one database)."""
    return replica_id or f"{socket.gethostname()}-{os.getpid()}"


def traces_endpoint(base: str) -> str:
    """The OTLP/HTTP traces URL of a collector base URL, as the OpenTelemetry spec says of
    `OTEL_EXPORTER_OTLP_ENDPOINT`: `<base>/v1/traces` (a URL already ending so is kept)."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def setup_tracing(settings: TracingSettings, *,
                  exporter: SpanExporter | None = None) -> TracerProvider | None:
    """The tracer provider for `settings`, or None when tracing is off (module doc).

    `exporter` (tests, embedding) receives the spans synchronously instead of OTLP, whatever
    the endpoint setting says."""
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return None
    from opentelemetry.sdk.resources import (
        SERVICE_INSTANCE_ID,
        SERVICE_NAME,
        SERVICE_VERSION,
        Resource,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from evalserve import __version__

    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES; ours win for these three.
    provider = TracerProvider(sampler=_sampler(), resource=Resource.create({
        SERVICE_NAME: settings.otel_service_name,
        SERVICE_INSTANCE_ID: replica_name(settings.replica_id),
        SERVICE_VERSION: __version__,
    }))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert settings.otel_exporter_otlp_endpoint is not None
        endpoint = traces_endpoint(settings.otel_exporter_otlp_endpoint)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def _sampler() -> Sampler | None:
    """Parent-based; roots sampled but CLIENT ones (module doc). None: `OTEL_TRACES_SAMPLER`
    is set, and the SDK builds the sampler it names."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_OFF,
        ALWAYS_ON,
        ParentBased,
        Sampler,
        SamplingResult,
    )
    from opentelemetry.trace import SpanKind

    class RootsButClients(Sampler):
        def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                          kind: SpanKind | None = None, attributes: Any = None,
                          links: Any = None, trace_state: Any = None) -> SamplingResult:
            chosen = ALWAYS_OFF if kind is SpanKind.CLIENT else ALWAYS_ON
            return chosen.should_sample(parent_context, trace_id, name, kind, attributes,
                                        links, trace_state)

        def get_description(self) -> str:
            return "RootsButClients"

    return ParentBased(root=RootsButClients())


def tracer_of(provider: TracerProvider | None) -> Tracer | None:
    """evalserve's tracer from `provider`; None when tracing is off."""
    if provider is None:
        return None
    from evalserve import __version__

    return provider.get_tracer(INSTRUMENTATION, __version__)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span current now (e.g. the request being served); None
    when there is none (tracing off, or outside any span)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    """The context whose remote parent is `traceparent` (W3C TraceContext); None for None. A
    malformed value gives an empty context, so a span started in it begins a new trace."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


@contextlib.contextmanager
def span(tracer: Tracer | None, name: str, *, traceparent: str | None = None,
         attributes: Mapping[str, Any] | None = None,
         kind: SpanKind | None = None) -> Iterator[Span | None]:
    """A span `name`, current inside the block, child of `traceparent` when given (else of
    the current span); yields None and does nothing when `tracer` is None. An exception
    leaving the block is recorded on the span and sets its status to ERROR (a cancellation is
    not an error)."""
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(name, context=context_of(traceparent),
                                      kind=kind or SpanKind.INTERNAL,
                                      attributes=attributes) as current:
        yield current

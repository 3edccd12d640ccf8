"""Helpers of the tracing tests: a real app with its lifespan running, tracing into an
in-memory exporter, and the spans it exported arranged as a tree."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from evalserve.engines.base import Engine
from evalserve.server.app import build_app
from evalserve.settings import Settings

__all__ = ["traced_app", "Spans", "traceparent_ids", "job_done"]


@contextlib.asynccontextmanager
async def traced_app(settings: Settings, exporter: SpanExporter | None,
                     engine: Engine | None = None) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """(app, client) with the lifespan entered and the engine loaded; spans go to `exporter`
    (None: only where `settings` says)."""
    app = build_app(settings, engine=engine, span_exporter=exporter)
    async with app.router.lifespan_context(app):
        await app.state.evalserve.wait_engine()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            yield app, client


async def job_done(app: Any, job_id: str) -> bool:
    """Whether the app's job service reports the job completed."""
    return (await app.state.evalserve.components.jobs.get(job_id)).status.value == "completed"


def traceparent_ids(traceparent: str) -> tuple[int, int]:
    """(trace id, parent span id) of a W3C `traceparent` header."""
    version, trace_id, span_id, _flags = traceparent.split("-")
    assert version == "00", traceparent
    return int(trace_id, 16), int(span_id, 16)


class Spans:
    """Finished spans, looked up by name, id and parent."""

    def __init__(self, spans: Iterable[ReadableSpan]) -> None:
        self.all = list(spans)
        self.by_id = {s.context.span_id: s for s in self.all}

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {self.names()}"
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return None if span.parent is None else self.by_id.get(span.parent.span_id)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.all
                if s.parent is not None and s.parent.span_id == span.context.span_id]

    def trace_ids(self) -> set[int]:
        return {s.context.trace_id for s in self.all}

    def names(self) -> list[str]:
        return sorted(s.name for s in self.all)

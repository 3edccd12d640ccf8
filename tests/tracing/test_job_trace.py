"""One job's spans form one tree, across replicas and into the upstream: the `POST /evaluate`
request span → `job` → `item` → `engine.generate` → the upstream HTTP client span, and the
upstream (a real HTTP server) receives a `traceparent` in the job's trace."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from evalserve.settings import Settings
from tests.jobs.helpers import answer, item
from tests.server.openai_app import make_settings
from tests.tracing.apps import Spans, job_done, traced_app, traceparent_ids
from tests.tracing.upstream import MODEL, FakeOpenAI
from tests.waiting import wait_until


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def upstream_settings(settings: Settings, upstream: FakeOpenAI, replica: str) -> Settings:
    """The `openai` engine on `upstream`, one item at a time, as replica `replica`."""
    return make_settings(settings, engine="openai", vllm_endpoint=upstream.url,
                         max_num_seqs=1, upstream_retries=0, replica_id=replica)


async def test_one_job_is_one_tree_from_the_request_to_the_upstream(
        settings, exporter) -> None:  # noqa: ANN001
    with FakeOpenAI(answer(4)) as upstream:
        async with traced_app(upstream_settings(settings, upstream, "replica-a"),
                              exporter) as (app, client):
            r = await client.post("/evaluate", json={"items": [item(0), item(1)]})
            assert r.status_code == 200, r.text
            job_id = r.json()["job_id"]
            await wait_until(lambda: job_done(app, job_id), what="the job to complete")
            stored = await app.state.evalserve.components.jobs.get(job_id)
    spans = Spans(exporter.get_finished_spans())

    request = spans.one("POST /evaluate")
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert request.attributes["http.status_code"] == 200
    trace_id = request.context.trace_id
    # everything exported is this one trace: the model discovery at start-up (a root client
    # call, outside any request or job) is not traced
    assert spans.trace_ids() == {trace_id}, spans.names()
    assert traceparent_ids(stored.options.traceparent) == (trace_id, request.context.span_id)

    job = spans.one("job")
    assert spans.parent(job) is request and job.kind is SpanKind.CONSUMER
    assert job.attributes["evalserve.job.id"] == job_id
    assert job.attributes["evalserve.job.status"] == "completed"
    assert job.attributes["evalserve.job.completed"] == 2
    items = spans.children(job)
    assert sorted(s.attributes["evalserve.item.index"] for s in items) == [0, 1]
    assert {s.name for s in items} == {"item"}
    assert all(s.attributes["evalserve.item.status"] == "scored" for s in items)
    assert all(s.attributes["evalserve.item.score"] == 4 for s in items)

    client_ids = set()
    for one in items:
        (generate,) = spans.children(one)
        assert generate.name == "engine.generate"
        assert generate.attributes["gen_ai.request.model"] == MODEL
        assert generate.attributes["gen_ai.usage.input_tokens"] == 7
        assert generate.attributes["gen_ai.usage.output_tokens"] == 2
        assert generate.attributes["gen_ai.response.finish_reasons"] == ("stop",)
        (http,) = spans.children(generate)
        assert http.kind is SpanKind.CLIENT and http.name == "POST"
        assert http.attributes["http.status_code"] == 200
        assert http.attributes["http.url"] == upstream.url + "/chat/completions"
        client_ids.add(http.context.span_id)
    # the upstream saw each call's own client span as its parent, in the job's trace
    assert {traceparent_ids(tp) for tp in upstream.chats} == {
        (trace_id, span_id) for span_id in client_ids}
    assert {s.resource.attributes["service.instance.id"] for s in spans.all} == {"replica-a"}
    assert {s.resource.attributes["service.name"] for s in spans.all} == {"evalserve"}


async def test_a_job_continued_by_another_replica_stays_in_the_request_trace(
        settings) -> None:  # noqa: ANN001
    """Replica a grades 2 of 5 items and stops (its third upstream call is held); replica b,
    on the same store, resumes the job: its spans join the trace of a's `POST /evaluate`.
    Each replica exports on its own (a stopping shuts its exporter down)."""
    exported = {"a": InMemorySpanExporter(), "b": InMemorySpanExporter()}
    with FakeOpenAI(answer(3), answer=2) as upstream:
        async with traced_app(upstream_settings(settings, upstream, "a"),
                              exported["a"]) as (app, client):
            r = await client.post("/evaluate", json={"items": [item(i) for i in range(5)]})
            assert r.status_code == 200, r.text
            job_id = r.json()["job_id"]
            jobs = app.state.evalserve.components.jobs

            async def midway() -> bool:
                return upstream.waiting == 1 and (await jobs.get(job_id)).completed == 2

            await wait_until(midway, what="2 items stored and the third held upstream")
        upstream.release()
        async with traced_app(upstream_settings(settings, upstream, "b"),
                              exported["b"]) as (app, _):
            await wait_until(lambda: job_done(app, job_id), what="replica b to finish the job")
    spans = Spans([*exported["a"].get_finished_spans(), *exported["b"].get_finished_spans()])

    request = spans.one("POST /evaluate")
    trace_id = request.context.trace_id
    assert spans.trace_ids() == {trace_id}, spans.names()
    runs = {s.resource.attributes["service.instance.id"]: s for s in spans.named("job")}
    assert sorted(runs) == ["a", "b"]
    assert all(spans.parent(run) is request for run in runs.values())
    assert runs["a"].attributes["evalserve.job.status"] == "running"  # handed back at stop
    assert runs["a"].attributes["evalserve.job.completed"] == 2
    assert runs["b"].attributes["evalserve.job.status"] == "completed"
    assert runs["b"].attributes["evalserve.job.completed"] == 5

    scored = {}
    for replica, run in runs.items():
        for one in spans.children(run):
            assert one.resource.attributes["service.instance.id"] == replica
            if one.attributes.get("evalserve.item.status") == "scored":
                scored[one.attributes["evalserve.item.index"]] = replica
    # each item scored once, by the replica that stored it; those cut by a's stop (the held
    # one, and any waiting for the engine slot) have no outcome on a's side, and no error
    assert scored == {0: "a", 1: "a", 2: "b", 3: "b", 4: "b"}
    cut = [s for s in spans.children(runs["a"]) if "evalserve.item.status" not in s.attributes]
    cut_indexes = {s.attributes["evalserve.item.index"] for s in cut}
    assert 2 in cut_indexes and cut_indexes <= {2, 3, 4}
    assert all(s.status.status_code is StatusCode.UNSET for s in cut)
    # every upstream call, from either replica, carried the job's trace
    assert len(upstream.chats) == 6  # a: 2 answered + 1 held; b: 3
    assert {traceparent_ids(tp)[0] for tp in upstream.chats} == {trace_id}

"""`evalserve serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` exports its spans over OTLP/HTTP: a
fake collector (a real HTTP server taking `POST /v1/traces`, decoded with
`opentelemetry.proto`) receives one trace for a job on the bundled model, continuing the
caller's `traceparent`."""

from __future__ import annotations

import gzip
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.test_evaluate import seed_items
from tests.e2e.test_jobs_resume import SHORT_RUBRIC

pytestmark = pytest.mark.e2e


class Collector:
    """A fake OTLP/HTTP collector: every span it was sent, with its resource's attributes."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["name"] == name]

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    with self.lock:
                        self.spans.append({
                            "name": s.name, "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(), "parent": s.parent_span_id.hex(),
                            "attributes": _attributes(s.attributes), "resource": resource})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                collector.receive(body)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler


def _attributes(pairs: Any) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()


def test_serve_exports_one_trace_per_job_to_the_otlp_endpoint(server_factory,
                                                             collector) -> None:  # noqa: ANN001
    server = server_factory(env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                                 "OTEL_BSP_SCHEDULE_DELAY": "100", "REPLICA_ID": "e2e-a",
                                 "MAX_NEW_TOKENS": "24"})
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    r = httpx.post(f"{server.url}/evaluate", timeout=30,
                   headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"},
                   json={"items": seed_items(2), "rubric": SHORT_RUBRIC})
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    server.wait_for(lambda: httpx.get(f"{server.url}/jobs/{job_id}").json()["status"]
                    == "completed", 300, "the job to complete")
    server.wait_for(lambda: [s for s in collector.named("job")
                             if s["attributes"].get("evalserve.job.status") == "completed"],
                    30, "the job span at the collector")
    server.wait_for(lambda: len(collector.named("engine.generate")) >= 2, 30,
                    "the engine spans at the collector")

    (request,) = collector.named("POST /evaluate")
    assert (request["trace_id"], request["parent"]) == (caller_trace, caller_span)
    (job,) = collector.named("job")
    assert job["parent"] == request["span_id"] and job["trace_id"] == caller_trace
    assert job["attributes"]["evalserve.job.id"] == job_id
    items = collector.named("item")
    assert sorted(s["attributes"]["evalserve.item.index"] for s in items) == [0, 1]
    assert {s["parent"] for s in items} == {job["span_id"]}
    generated = collector.named("engine.generate")
    assert {s["parent"] for s in generated} <= {s["span_id"] for s in items}
    assert all(s["attributes"]["gen_ai.usage.output_tokens"] > 0 for s in generated)
    assert all(s["attributes"]["gen_ai.request.max_tokens"] == 24 for s in generated)
    # the polls of GET /jobs/{id} are traces of their own; /health probes are not traced
    others = {s["name"] for s in collector.spans if s["trace_id"] != caller_trace}
    assert others == {"GET /jobs/{job_id}"}
    assert {s["resource"]["service.instance.id"] for s in collector.spans} == {"e2e-a"}
    assert {s["resource"]["service.name"] for s in collector.spans} == {"evalserve"}

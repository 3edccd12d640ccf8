"""Prometheus telemetry: parsed exposition, counters moving, route templates, the metrics port."""

from __future__ import annotations

import contextlib

import httpx
from prometheus_client.parser import text_string_to_metric_families

from evalserve.server.app import build_app
from evalserve.server.telemetry import Telemetry, metrics_server
from tests.e2e.server import free_port
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import answer, item
from tests.server.openai_app import chat_body, make_settings, running_app
from tests.waiting import wait_until


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(snap: dict, name: str, **labels: str) -> float:
    return snap.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict:
    r = await client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_counters_move_with_requests(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings)) as (_, client):
        before = await scrape(client)
        body = chat_body("count me", temperature=0)
        await client.post("/v1/chat/completions", json=body)
        await client.post("/v1/chat/completions", json=body)
        await client.post("/v1/chat/completions", json=chat_body("x", model="nope"))
        await client.get("/v1/models/scripted")
        after = await scrape(client)
    ep = {"endpoint": "/v1/chat/completions"}
    assert value(after, "text_cache_misses_total", **ep) - value(
        before, "text_cache_misses_total", **ep) == 1
    assert value(after, "text_cache_hits_total", **ep) - value(
        before, "text_cache_hits_total", **ep) == 1
    assert value(after, "text_generation_seconds_count", model="scripted", **ep) == 1
    assert value(after, "text_prompt_tokens_total", model="scripted") == 2  # "count me"
    assert value(after, "text_generated_tokens_total", model="scripted") == 2  # "hello world"
    route = {"method": "POST", "route": "/v1/chat/completions"}
    assert value(after, "evalserve_http_requests_total", status="200", **route) == 2
    assert value(after, "evalserve_http_requests_total", status="404", **route) == 1
    # labelled by the route template, not the raw path
    assert value(after, "evalserve_http_requests_total", method="GET", status="200",
                 route="/v1/models/{model_id:path}") == 1
    assert value(after, "evalserve_model_loaded") == 1
    assert value(after, "evalserve_process_memory_bytes") > 0


async def test_generation_errors_are_counted(settings) -> None:  # noqa: ANN001
    from evalserve.errors import EngineError

    def fail(request):  # noqa: ANN001, ANN202
        raise EngineError("boom")

    async with running_app(make_settings(settings), ScriptedEngine(fail)) as (_, client):
        await client.post("/v1/completions", json={"model": "scripted", "prompt": "p"})
        snap = await scrape(client)
    assert value(snap, "text_generation_errors_total", model="scripted",
                 endpoint="/v1/completions", type="engine_error") == 1


async def test_services_api_for_other_components(settings) -> None:  # noqa: ANN001
    async with running_app(make_settings(settings)) as (app, client):
        app.state.evalserve.components.telemetry.items_graded.inc(5)
        snap = await scrape(client)
    assert value(snap, "evalserve_active_jobs") == 0  # the app's job service: none yet
    assert value(snap, "evalserve_items_graded_total") == 5


async def test_graded_job_items_are_counted(settings) -> None:  # noqa: ANN001
    """Regression: `evalserve_items_graded_total` was documented but nothing incremented it."""
    engine = ScriptedEngine(lambda r: answer(3))
    async with running_app(make_settings(settings), engine=engine) as (app, client):
        r = await client.post("/evaluate", json={"items": [item(i) for i in range(3)]})
        assert r.status_code == 200, r.text
        jobs = app.state.evalserve.components.jobs
        job_id = r.json()["job_id"]
        await wait_until(lambda: _finished(jobs, job_id), what="the job to complete")
        snap = await scrape(client)
    assert value(snap, "evalserve_items_graded_total") == 3


async def _finished(jobs, job_id: str) -> bool:  # noqa: ANN001
    return (await jobs.get(job_id)).status.value == "completed"


def test_live_gauges_read_what_telemetry_is_given() -> None:
    loaded = [False]
    telemetry = Telemetry(ScriptedEngine(lambda r: "x"), loaded=lambda: loaded[0],
                          active_jobs=lambda: 3)
    before = samples(telemetry.exposition().decode())
    loaded[0] = True
    after = samples(telemetry.exposition().decode())
    assert value(before, "evalserve_model_loaded") == 0
    assert value(after, "evalserve_model_loaded") == 1
    assert value(after, "evalserve_active_jobs") == 3
    assert value(after, "evalserve_engine_queue_depth") == 0  # Engine.queue_depth
    assert ("evalserve_engine_running", ()) not in after  # Engine.running is None: no gauge


async def test_two_apps_in_one_process_keep_separate_registries(settings) -> None:  # noqa: ANN001
    async with contextlib.AsyncExitStack() as stack:
        _, a = await stack.enter_async_context(running_app(make_settings(settings)))
        _, b = await stack.enter_async_context(running_app(make_settings(settings)))
        await a.get("/v1/models")
        snap_a, snap_b = await scrape(a), await scrape(b)
    models = {"method": "GET", "route": "/v1/models", "status": "200"}
    assert value(snap_a, "evalserve_http_requests_total", **models) == 1
    assert value(snap_b, "evalserve_http_requests_total", **models) == 0


async def test_metrics_port_serves_the_registry_without_auth(settings) -> None:  # noqa: ANN001
    port = free_port()
    s = make_settings(settings, metrics_port=port, host="127.0.0.1", api_token="secret")
    app = build_app(s, engine=ScriptedEngine(lambda r: "x"))
    async with metrics_server(s, app.state.evalserve.components.telemetry) as listening:
        assert listening == port
        async with httpx.AsyncClient() as client:
            r = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200
        assert ("evalserve_model_loaded", ()) in samples(r.text)
    with httpx.Client() as client:  # stopped at shutdown
        try:
            client.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            raise AssertionError("metrics port still open after shutdown")
        except httpx.ConnectError:
            pass


async def test_busy_metrics_port_does_not_stop_the_app(settings, caplog) -> None:  # noqa: ANN001
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        s = make_settings(settings, metrics_port=sock.getsockname()[1], host="127.0.0.1")
        app = build_app(s, engine=ScriptedEngine(lambda r: "x"))
        async with metrics_server(s, app.state.evalserve.components.telemetry) as listening:
            assert listening is None
    assert "METRICS_PORT" in caplog.text


async def test_metrics_port_binds_metrics_host(settings, monkeypatch) -> None:  # noqa: ANN001
    """Regression: the Prometheus port always bound `HOST` (0.0.0.0 by default), exposing the
    metrics on every interface; `METRICS_HOST` keeps it on localhost."""
    import prometheus_client

    bound = []
    real = prometheus_client.start_http_server

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        server, thread = real(*args, **kwargs)
        bound.append(server.server_address)
        return server, thread

    monkeypatch.setattr(prometheus_client, "start_http_server", recording)
    port = free_port()
    s = make_settings(settings, metrics_port=port, host="0.0.0.0", metrics_host="127.0.0.1")
    app = build_app(s, engine=ScriptedEngine(lambda r: "x"))
    async with metrics_server(s, app.state.evalserve.components.telemetry) as listening:
        assert listening == port
    assert bound == [("127.0.0.1", port)]
    unset = make_settings(settings, metrics_port=free_port(), host="127.0.0.2")
    async with metrics_server(unset, app.state.evalserve.components.telemetry):
        pass
    assert bound[1][0] == "127.0.0.2"  # unset: HOST


async def test_each_replica_names_itself_in_an_info_metric(settings) -> None:  # noqa: ANN001
    """`evalserve_replica_info{replica}` tells the replicas' scrapes apart (REPLICA_ID, else
    `<hostname>-<pid>`, the traces' `service.instance.id`)."""
    import os
    import socket

    from evalserve import __version__

    async with contextlib.AsyncExitStack() as stack:
        _, a = await stack.enter_async_context(
            running_app(make_settings(settings, replica_id="replica-a")))
        _, b = await stack.enter_async_context(running_app(make_settings(settings)))
        snap_a, snap_b = await scrape(a), await scrape(b)
    info = [(name, dict(labels)) for (name, labels), v in snap_a.items()
            if name == "evalserve_replica_info" and v == 1]
    assert info == [("evalserve_replica_info", {"replica": "replica-a", "version": __version__})]
    assert value(snap_b, "evalserve_replica_info", replica=f"{socket.gethostname()}-{os.getpid()}",
                 version=__version__) == 1

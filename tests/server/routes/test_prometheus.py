"""`GET /metrics`: the app's own registry in the Prometheus text format, behind auth when a
token is set, 503 without telemetry. (What the metrics count: tests/server/test_telemetry.py.)"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from evalserve.settings import Settings
from tests.server.openai_app import chat_body, make_settings, running_app


async def test_metrics_is_the_prometheus_exposition_of_the_app_registry(
        settings: Settings) -> None:
    async with running_app(settings) as (app, client):
        await client.post("/v1/chat/completions", json=chat_body("hi"))
        resp = await client.get("/metrics")
        expected = app.state.evalserve.components.telemetry.exposition().decode()
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=")
    families = {f.name for f in text_string_to_metric_families(resp.text)}
    assert {"text_generation_seconds", "text_generated_tokens",
            "evalserve_http_requests"} <= families
    generated = [s for f in text_string_to_metric_families(resp.text) for s in f.samples
                 if s.name == "text_generated_tokens_total"]
    assert [(s.labels, s.value) for s in generated] == [({"model": "scripted"}, 2.0)]
    # same families as the registry holds (gauges are read at scrape time)
    assert families == {f.name for f in text_string_to_metric_families(expected)}


async def test_metrics_needs_the_token_when_one_is_set(settings: Settings) -> None:
    async with running_app(make_settings(settings, api_token="s3cret")) as (_, client):
        refused = await client.get("/metrics")
        allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert allowed.status_code == 200 and "evalserve_http_requests" in allowed.text


async def test_without_telemetry_metrics_is_a_503_envelope(settings: Settings) -> None:
    async with running_app(settings) as (app, client):
        app.state.evalserve.components.telemetry = None
        resp = await client.get("/metrics")
    assert resp.status_code == 503
    assert resp.json()["error"] == {
        "message": "the telemetry is not running; retry in a few seconds",
        "type": "server_error", "code": "engine_unavailable"}


async def test_metrics_is_not_in_the_openapi_schema(settings: Settings) -> None:
    async with running_app(settings) as (_, client):
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/metrics" not in paths and "/health" in paths

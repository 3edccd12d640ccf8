"""The dashboard page: served without a token as one self-contained document (its scripts and
vendored libraries inlined), calling only routes the app has, and never parsing data as HTML."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import httpx
from fastapi.routing import iter_route_contexts

from evalserve.server.app import build_app
from evalserve.server.routes.ui import page
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine

STATIC = files("evalserve.server").joinpath("static")


def _app(settings: Settings):
    return build_app(settings.model_copy(update={"api_token": "secret"}),
                     engine=ScriptedEngine(lambda r: ""))


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


async def test_dashboard_is_served_whole_and_calls_real_routes(settings: Settings) -> None:
    app = _app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/ui")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        html = resp.text
        assert html == page()
        # every named file is inlined (nothing left to load from another path or the network)
        assert "/*inline:" not in html
        assert "Chart.js v4" in html and "Papa" in html
        assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://cdn", html)
        assert html.count("</script>") == html.count("<script>")
        # every API path the page calls is one of the app's routes
        paths = [getattr(c.original_route, "path", "") for c in iter_route_contexts(app.routes)]
        patterns = [_route_pattern(p) for p in paths if p]
        called = set(re.findall(r'(?:api|text|post|request|download)\(\s*[`"](/[\w/.-]*)', html))
        assert {"/jobs", "/rubrics", "/health", "/evaluate", "/metrics", "/v1/models",
                "/ui/service.json", "/stream/"} <= called
        for path in called - {"/stream/", "/rubrics/", "/jobs/"}:
            assert any(p.match(path) for p in patterns), path
        assert "/stream/{job_id}" in paths
        # the data routes need the token; the page sends it as a bearer header
        assert (await client.get("/jobs")).status_code == 401
        assert (await client.get("/ui/service.json")).status_code == 401
        assert 'Authorization: "Bearer " + ES.token()' in html


async def test_service_json_names_the_engine_and_model(settings: Settings) -> None:
    app = _app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = (await client.get("/ui/service.json",
                                 headers={"Authorization": "Bearer secret"})).json()
    assert body == {"engine": settings.engine, "model": app.state.evalserve.engine.model_id,
                    "max_new_tokens": settings.max_new_tokens}


def test_scripts_never_insert_markup() -> None:
    """Text from items and judges goes through `textContent`/text nodes only."""
    for script in STATIC.joinpath("js").iterdir():
        source = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{script.name} uses {sink}"


def test_token_is_kept_for_the_session_only() -> None:
    source = STATIC.joinpath("js", "api.js").read_text(encoding="utf-8")
    assert "sessionStorage" in source
    assert "localStorage" not in "".join(
        p.read_text(encoding="utf-8") for p in STATIC.joinpath("js").iterdir())


def test_vendored_files_keep_their_licences_and_versions() -> None:
    vendor = STATIC.joinpath("vendor")
    names = {p.name for p in vendor.iterdir()}
    assert {"chart.umd.min.js", "chart.js.LICENSE.md", "papaparse.min.js",
            "papaparse.LICENSE", "VERSIONS"} <= names
    versions = vendor.joinpath("VERSIONS").read_text(encoding="utf-8")
    script = Path(__file__).resolve().parents[3] / "scripts" / "vendor_js.sh"
    pinned = dict(re.findall(r"^(\w+)_VERSION=(\S+)$", script.read_text(encoding="utf-8"), re.M))
    assert f"chart.js {pinned['CHARTJS']}" in versions
    assert f"papaparse {pinned['PAPAPARSE']}" in versions
    assert f"Chart.js v{pinned['CHARTJS']}" in vendor.joinpath("chart.umd.min.js").read_text()

"""The dashboard page: served without a token, and it talks to the routes that exist."""

from __future__ import annotations

import re

import httpx
from fastapi.routing import iter_route_contexts

from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine


async def test_dashboard_is_served_and_calls_real_routes(settings: Settings) -> None:
    app = build_app(settings.model_copy(update={"api_token": "secret"}),
                    engine=ScriptedEngine(lambda r: ""))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        # every API path the page calls is a route of the app, and needs the token
        called = set(re.findall(r'api\("(/[a-z]+)', html)) | {"/stream/x"}
        assert called >= {"/health", "/rubrics", "/jobs", "/evaluate"}
        paths = {getattr(c.original_route, "path", "")
                 for c in iter_route_contexts(app.routes)}
        for path in called - {"/stream/x"}:
            assert path in paths, path
        assert "/stream/{job_id}" in paths
        assert (await client.get("/jobs")).status_code == 401
        assert "Authorization" in html and "Bearer" in html

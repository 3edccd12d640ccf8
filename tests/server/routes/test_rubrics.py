"""`GET /rubrics` and `GET /rubrics/{name}` in-process, with a custom RUBRICS_DIR (the real
server with the built-ins is covered by tests/e2e/test_judge.py)."""

from __future__ import annotations

from pathlib import Path

import httpx

from evalserve.server.app import build_app
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine

ESSAY = """\
description: Essay rubric
instructions: Grade the essay from {scale_min} to {scale_max}.
template: "Essay: {essay}"
fields: [essay]
scale: [0, 5, 10]
language: es
score_field: puntos
"""


async def test_rubrics_dir_is_served(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "rubrics"
    folder.mkdir()
    (folder / "essay.yaml").write_text(ESSAY, encoding="utf-8")
    (folder / "broken.yaml").write_text("scale: [1\n", encoding="utf-8")
    app = build_app(settings.model_copy(update={"rubrics_dir": folder}),
                    engine=ScriptedEngine(lambda r: ""))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        listing = (await client.get("/rubrics")).json()["rubrics"]
        names = [r["name"] for r in listing]
        assert "essay" in names and "teacher-eval-ca" in names and "broken" not in names
        essay = next(r for r in listing if r["name"] == "essay")
        assert essay == {"name": "essay", "description": "Essay rubric", "fields": ["essay"],
                         "optional_fields": [], "id_field": None, "scale": [0, 5, 10],
                         "language": "es", "format": "json",
                         "output_fields": ["puntos", "feedback"]}
        full = (await client.get("/rubrics/essay")).json()
        assert full["template"] == "Essay: {essay}" and len(full["hash"]) == 64
        broken = await client.get("/rubrics/broken")
        assert broken.status_code == 422
        assert "not valid YAML" in broken.json()["error"]["message"]
        missing = await client.get("/rubrics/absent")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "invalid_request_error"

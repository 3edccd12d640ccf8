"""`POST /evaluate` refuses, at submission, what would poison a job later: a rubric scale that
would be expanded per item, a NaN in an item, a tag forging MLflow's own. Nothing is stored.

The happy paths of the route: tests/server/routes/test_evaluate.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import answer, item
from tests.server.openai_app import running_app

INLINE = {"name": "wide", "instructions": "Score it from {scale_min} to {scale_max}: {scale}.",
          "template": "Text: {text}", "fields": ["text"]}


async def _submit(settings: Settings, body: bytes) -> tuple[Any, dict, ScriptedEngine]:
    engine = ScriptedEngine(lambda r: answer())
    async with running_app(settings, engine) as (_, client):
        resp = await client.post("/evaluate", content=body,
                                 headers={"Content-Type": "application/json"})
        listed = (await client.get("/jobs")).json()
    return resp, listed, engine


@pytest.mark.parametrize(("scale", "fragment"), [
    ([0, 1_000_000_000], "scale: score 1000000000 is out of range: scores must lie between "
                         "-1000000 and 1000000"),
    (list(range(200)), "scale: List should have at most 101 items"),
])
async def test_a_poison_rubric_scale_is_a_422_naming_the_field(
        settings: Settings, scale: list[int], fragment: str) -> None:
    """Defect (issue 11, poison jobs): an inline rubric with `"scale": [0, 1000000000]` was
    accepted, and grading each item built a billion-element list on the event loop."""
    body = json.dumps({"items": [{"text": "t"}], "rubric": {**INLINE, "scale": scale}})
    resp, listed, engine = await _submit(settings, body.encode())
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("invalid rubric 'wide' (inline): ")
    assert fragment in error["message"]
    assert listed == {"jobs": []} and engine.requests == []


@pytest.mark.parametrize(("literal", "shown"), [("NaN", "nan"), ("Infinity", "inf"),
                                                ("-Infinity", "-inf")])
async def test_a_non_finite_number_in_an_item_is_a_422_naming_it(
        settings: Settings, literal: str, shown: str) -> None:
    """Defect (issue 11, item 7): `NaN` in an item (Python's json reads it) was stored and
    streamed back as `NaN`, which broke the dashboard's `JSON.parse`."""
    good = json.dumps(item(0), ensure_ascii=False)
    body = f'{{"items": [{good}, {{"id_alumno": "A1", "curso": {literal}}}]}}'
    resp, listed, engine = await _submit(settings, body.encode())
    assert resp.status_code == 422
    assert resp.json()["error"]["message"] == (
        f"items[1].curso is {shown}, which is not a JSON number; send a finite number, a "
        "string or null")
    assert listed == {"jobs": []} and engine.requests == []


async def test_track_tags_setting_mlflow_system_tags_are_a_422(settings: Settings) -> None:
    """Defect (issue 11, item 7): `track.tags` could overwrite MLflow system tags."""
    body = json.dumps({"items": [item(0)], "track": {"tags": {"mlflow.user": "mallory"}}})
    resp, listed, engine = await _submit(settings, body.encode())
    assert resp.status_code == 422
    message = resp.json()["error"]["message"]
    assert "track.tags.mlflow.user: tags starting with 'mlflow.' are MLflow's system tags" in (
        message)
    assert listed == {"jobs": []} and engine.requests == []

"""Job event streams: where a reconnecting client resumes, and what it is sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evalserve.errors import InvalidInputError
from evalserve.server.sse import parse_last_event_id
from evalserve.settings import Settings
from tests.fakes import ScriptedEngine
from tests.jobs.helpers import answer, item
from tests.server.openai_app import make_settings, running_app


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, None, 0),
    ("", "", 0),
    (None, "7", 7),
    ("", "7", 7),  # an empty query parameter falls back to the header
    ("3", "7", 3),  # the query parameter wins
    ("0", "9", 0),
    (" 12 ", None, 12),
    ("5", None, 5),
])
def test_parse_last_event_id(query: str | None, header: str | None, expected: int) -> None:
    assert parse_last_event_id(query, header) == expected


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10", "  "])
def test_a_non_integer_id_is_refused_saying_what_to_send(raw: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_last_event_id(None, raw)
    assert info.value.message == (
        f"Last-Event-ID {raw!r} is not an event id; send the integer `id:` of the last event "
        "received")
    assert info.value.status == 422


def test_a_negative_id_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must be 0 or a positive event id"):
        parse_last_event_id("-1", None)


@pytest.mark.parametrize("raw", ["9223372036854775808", "99999999999999999999",
                                 "1" * 400_000])
def test_an_id_beyond_int64_is_refused_before_any_query(raw: str) -> None:
    """Defect (issue 11, item 7): `last_event_id=99999999999999999999` passed and then
    overflowed SQLite's integer inside the SSE generator (a broken 200 stream)."""
    with pytest.raises(InvalidInputError) as info:
        parse_last_event_id(raw, None)
    assert info.value.status == 422
    assert "send the integer `id:` of the last event received" in info.value.message
    assert len(info.value.message) < 200
    assert parse_last_event_id(None, "9223372036854775807") == 2**63 - 1


def test_a_bad_query_is_refused_even_with_a_good_header() -> None:
    with pytest.raises(InvalidInputError, match="'x' is not an event id"):
        parse_last_event_id("x", "4")


def parse_events(text: str) -> list[dict[str, Any]]:
    """SSE frames as `{"id", "event", "data"}` (comment lines such as pings skipped)."""
    frames, current = [], {}
    for line in text.splitlines():
        if not line:
            if current:
                frames.append(current)
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = json.loads(value) if key == "data" else value
    if current:
        frames.append(current)
    return frames


async def test_job_stream_events_carry_ids_and_resume_after_the_last_one(
        settings: Settings) -> None:
    engine = ScriptedEngine(lambda r: answer(4))
    s = make_settings(settings, batch_size=1)
    async with running_app(s, engine) as (_, client):
        job = (await client.post("/evaluate", json={"items": [item(i) for i in range(3)]}))
        assert job.status_code == 200, job.text
        url = job.json()["stream_url"]
        full = await client.get(url)  # follows the job until its final event
        after_two = await client.get(url, headers={"Last-Event-ID": "2"})
        query_wins = await client.get(url, params={"last_event_id": "3"},
                                      headers={"Last-Event-ID": "1"})
        bad = await client.get(url, headers={"Last-Event-ID": "last"})
    assert full.headers["content-type"].startswith("text/event-stream")
    assert full.headers["cache-control"] == "no-cache"
    assert full.headers["x-accel-buffering"] == "no"
    frames = parse_events(full.text)
    assert [(f["id"], f["event"]) for f in frames] == [
        ("1", "batch_complete"), ("2", "batch_complete"), ("3", "batch_complete"),
        ("4", "complete")]
    assert [f["id"] for f in parse_events(after_two.text)] == ["3", "4"]
    assert parse_events(after_two.text) == frames[2:]  # same events, not re-made
    assert [f["id"] for f in parse_events(query_wins.text)] == ["4"]
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_input"
    assert "'last' is not an event id" in bad.json()["error"]["message"]


async def test_unknown_job_is_a_404_envelope_not_an_empty_stream(settings: Settings) -> None:
    async with running_app(make_settings(settings)) as (_, client):
        r = await client.get("/stream/no-such-job")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == "not_found" and "no-such-job" in error["message"]


async def test_an_out_of_range_id_is_a_422_envelope_before_the_stream(
        settings: Settings) -> None:
    """Defect (issue 11, item 7): `last_event_id=99999999999999999999` (query or header)
    overflowed SQLite inside the SSE generator instead of answering 422."""
    async with running_app(make_settings(settings), ScriptedEngine(lambda r: answer(4))) as (
            _, client):
        job = await client.post("/evaluate", json={"items": [item(0)]})
        url = job.json()["stream_url"]
        by_query = await client.get(url, params={"last_event_id": "99999999999999999999"})
        by_header = await client.get(url, headers={"Last-Event-ID": "99999999999999999999"})
        negative = await client.get(url, params={"last_event_id": "-3"})
        full = await client.get(url)
    for resp in (by_query, by_header):
        assert resp.status_code == 422
        assert resp.headers["content-type"] == "application/json"
        assert resp.json()["error"] == {
            "message": "Last-Event-ID 99999999999999999999 is out of range: event ids are at "
                       "most 9223372036854775807; send the integer `id:` of the last event "
                       "received",
            "type": "invalid_request_error", "code": "invalid_input"}
    assert negative.status_code == 422
    assert negative.json()["error"]["message"] == "Last-Event-ID must be 0 or a positive event id"
    assert [f["event"] for f in parse_events(full.text)] == ["batch_complete", "complete"]


async def test_stream_events_are_strict_json(settings: Settings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect (issue 11, item 7): event data was written with Python's json, which emits
    `NaN`/`Infinity`; the dashboard's `JSON.parse` then failed on the whole stream."""
    from evalserve.jobs.models import JobEvent

    async with running_app(make_settings(settings), ScriptedEngine(lambda r: answer(4))) as (
            app, client):
        job_id = (await client.post("/evaluate", json={"items": [item(0)]})).json()["job_id"]
        jobs = app.state.evalserve.components.jobs

        async def follow(job_id: str, after_id: int = 0):  # noqa: ANN202
            yield JobEvent(job_id, 1, "complete", {"mean_score": float("nan"),
                                                   "m": [float("inf")]}, final=True)

        monkeypatch.setattr(jobs, "follow", follow)
        resp = await client.get(f"/stream/{job_id}")
    assert "NaN" not in resp.text and "Infinity" not in resp.text
    [frame] = parse_events(resp.text)
    assert frame["data"] == {"mean_score": None, "m": [None]}
